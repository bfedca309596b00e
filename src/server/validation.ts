import AjvCompiler from "@fastify/ajv-compiler";
import type { FastifyServerOptions } from "fastify";
import { HttpError } from "./http-error";

type ValidatorFactory = NonNullable<
  NonNullable<NonNullable<FastifyServerOptions["schemaController"]>["compilersFactory"]>["buildValidator"]
>;
type Validate = ReturnType<ReturnType<ValidatorFactory>>;

/**
 * Fastify's validator with two changes. It coerces types, which is right for the URL (its "2" is the
 * integer a params schema asks for) and wrong for JSON bodies: coerced, `{"loss":null,"accuracy":true}`
 * passed as 0 and 1, so bodies are checked as sent. And Ajv coerces the string "Infinity" (or "1e999")
 * to a number that skips its integer and maximum checks, so a coerced part must hold finite numbers only.
 */
export function validatorFactory(): ValidatorFactory {
  const fromPool = AjvCompiler();
  return (externalSchemas, options) => {
    const coercing = fromPool(externalSchemas, options);
    if (options?.mode === "JTD") return coercing;
    const strict = fromPool(externalSchemas, {
      ...options,
      customOptions: { ...options?.customOptions, coerceTypes: false },
    });
    return (route) =>
      route.httpPart === "body" ? strict(route) : finiteOnly(coercing(route), route.httpPart ?? "request");
  };
}

function finiteOnly(validate: Validate, part: string): Validate {
  const checked = (...args: Parameters<Validate>) => {
    const valid = validate(...args);
    checked.errors = validate.errors;
    if (valid !== true || typeof args[0] !== "object" || args[0] === null) return valid;
    for (const [key, value] of Object.entries(args[0])) {
      if (typeof value === "number" && !Number.isFinite(value)) {
        return { error: new HttpError(400, `${part}/${key} must be a finite number`) };
      }
    }
    return true;
  };
  checked.errors = validate.errors;
  return Object.assign(checked, {
    schema: validate.schema,
    schemaEnv: validate.schemaEnv,
  }) as unknown as Validate;
}
