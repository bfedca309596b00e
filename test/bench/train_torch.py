"""Native PyTorch CPU training throughput for a fedward plan's model (called by test/bench/train.ts).

Reads one JSON object on stdin: {"plan": <validated plan>, "steps": n, "repeats": r, "threads": t}, builds the
same network as src/core/model-format.ts (CNN: Conv2d with "same" padding and max pools, Flatten, Linear
layers; MLP: Linear layers; last layer Linear(1) + sigmoid, binary cross-entropy), trains it on a fixed
synthetic batch and prints {"examples_per_second": median, "runs": [...]} on stdout.
"""

import json
import math
import statistics
import sys
import time

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU}


def same_padding(n, kernel, stride):
    """TF's "same" padding along one axis: (before, after)."""
    out = math.ceil(n / stride)
    total = max(0, (out - 1) * stride + kernel - n)
    return total // 2, total - total // 2


def build(plan):
    model = plan["model"]
    act = ACTIVATIONS[model["activation"]]
    layers = []
    image = plan.get("image")
    if model["type"] == "cnn":
        h, w, c = image["height"], image["width"], image["channels"]
        for conv in model["conv"]:
            k, s = conv["kernel"], conv.get("stride", 1)
            top, bottom = same_padding(h, k, s)
            left, right = same_padding(w, k, s)
            layers += [nn.ZeroPad2d((left, right, top, bottom)), nn.Conv2d(c, conv["filters"], k, s), act()]
            h, w, c = math.ceil(h / s), math.ceil(w / s), conv["filters"]
            if "pool" in conv:
                layers.append(nn.MaxPool2d(conv["pool"]))
                h, w = h // conv["pool"], w // conv["pool"]
        width = h * w * c
        hidden = model["dense"]
    else:
        width = plan["inputWidth"]
        hidden = model["hidden"]
    layers.append(nn.Flatten())
    for units in hidden:
        layers += [nn.Linear(width, units), act()]
        width = units
    layers += [nn.Linear(width, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


def print_rate(step, job, n):
    """Times job["repeats"] runs of job["steps"] calls of step() after one warm-up; prints the median rate."""
    step()
    runs = []
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        for _ in range(job["steps"]):
            step()
        runs.append(job["steps"] * n / (time.perf_counter() - start))
    print(json.dumps({"examples_per_second": statistics.median(runs), "runs": runs}))


def main():
    job = json.load(sys.stdin)
    plan = job["plan"]
    torch.set_num_threads(job["threads"])
    torch.manual_seed(1)
    n = plan["training"]["batchSize"]
    image = plan.get("image")
    shape = [n, image["channels"], image["height"], image["width"]] if image else [n, plan["inputWidth"]]
    x = torch.rand(shape)
    y = (torch.arange(n) % 2).float().reshape(n, 1)
    model = build(plan)
    lr = plan["training"]["learningRate"]
    optimizer = (torch.optim.Adam if plan["training"]["optimizer"] == "adam" else torch.optim.SGD)(
        model.parameters(), lr=lr
    )
    loss_fn = nn.BCELoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()  # waits for the step, as tfjs's trainOnBatch does

    print_rate(step, job, n)


if __name__ == "__main__":
    main()
