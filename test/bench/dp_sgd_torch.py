"""Native PyTorch CPU throughput of one DP-SGD step for a fedward plan's model (called by test/bench/dp-sgd.ts).

Reads one JSON object on stdin: {"plan": <validated plan with inputWidth>, "batch": n, "steps": s,
"repeats": r, "threads": t, "clip": C, "sigma": s}. Builds the same network as train_torch.py, then each
step computes per-example gradients with torch.func (functorch on PyTorch 1.13; vmap over grad of a functional_call, as Opacus's
functorch path and the torch.func tutorial "Per-sample-gradients" do), clips each example's gradient over all
layers together to C, sums, adds Gaussian noise of std sigma (torch.normal: this is a speed yardstick, not
a private mechanism), divides by the batch and takes an optimizer step. Prints
{"examples_per_second": median, "runs": [...]}.
"""

import json
import sys

import torch
try:
    from torch.func import functional_call, grad, vmap
except ImportError:  # PyTorch 1.13 (Debian bookworm) ships the same API as functorch
    from functorch import grad, vmap
    from torch.nn.utils.stateless import functional_call

from train_torch import build, print_rate


def main():
    job = json.load(sys.stdin)
    plan = job["plan"]
    torch.set_num_threads(job["threads"])
    torch.manual_seed(1)
    n = job["batch"]
    image = plan.get("image")
    shape = [n, image["channels"], image["height"], image["width"]] if image else [n, plan["inputWidth"]]
    x = torch.rand(shape)
    y = (torch.arange(n) % 2).float().reshape(n, 1)
    model = build(plan)
    # build() ends in Sigmoid; the loss takes the logit, as fedward's per-example code does.
    logits = torch.nn.Sequential(*list(model.children())[:-1])
    lr = plan["training"]["learningRate"]
    optimizer = (torch.optim.Adam if plan["training"]["optimizer"] == "adam" else torch.optim.SGD)(
        logits.parameters(), lr=lr
    )
    clip, sigma = job["clip"], job["sigma"]
    bce = torch.nn.BCEWithLogitsLoss()

    def loss_one(p, xi, yi):
        return bce(functional_call(logits, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))

    def step():
        p = {k: v.detach() for k, v in logits.named_parameters()}
        grads = per_example(p, x, y)
        norms = torch.sqrt(sum(g.reshape(n, -1).pow(2).sum(1) for g in grads.values()))
        factor = (clip / (norms + 1e-12)).clamp(max=1.0)
        optimizer.zero_grad()
        for name, param in logits.named_parameters():
            g = grads[name]
            summed = torch.einsum("i,i...->...", factor, g)
            param.grad = (summed + torch.normal(0.0, sigma, size=summed.shape)) / n
        optimizer.step()
        return float(norms[0])  # waits for the step

    print_rate(step, job, n)


if __name__ == "__main__":
    main()
