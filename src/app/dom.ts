type Child = Node | string | number | null | undefined | false;

/** Tiny element builder: attributes as strings (or listeners for on*), children as nodes or text. */
export function h(
  tag: string,
  attrs: Record<string, string | boolean | ((e: Event) => void) | undefined> = {},
  ...children: Child[]
): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function fmt(x: number | undefined, digits = 3): string {
  return x === undefined || Number.isNaN(x) ? "—" : x.toFixed(digits);
}

export function pct(x: number | undefined): string {
  return x === undefined ? "—" : `${(x * 100).toFixed(1)}%`;
}
