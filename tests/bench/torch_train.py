#!/usr/bin/env python3
"""PyTorch training-throughput reference for `pare train`.

Builds lenet5 and resnet8 as /work/shared/models/README.md "Architectures"
describes them (random init), trains --warmup untimed iterations, then
--rounds timed rounds of --iters iterations at batch 64 with AdamW +
cross-entropy on 2 threads, and prints one JSON line per model with the
fastest round (images_per_s, ms_per_step) and the median round's step time:

  {"model": "lenet5", "images_per_s": 1234.5, "batch": 64, "threads": 2, ...}

A timed iteration is what pare times per step: forward in training mode,
loss, backward, optimizer step (zero_grad included). Data is random by
default; --data fmnist reads Fashion-MNIST training images (IDX gz) and
normalises them like the reference models ((x/255 - 0.2860) / 0.3530).

  tests/bench/torch_train.py [--models lenet5,resnet8] [--iters 100]
                             [--warmup 10] [--rounds 3] [--batch 64] [--threads 2]
                             [--data random|fmnist] [--fmnist DIR] [--seed 1]

Exits 77 when torch cannot be imported (Debian's python3-torch lives in
/usr/bin/python3's path; run it with that interpreter if another python3
comes first in PATH).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the bench is optional: report a skip, not a failure
    print("skipped: cannot import torch (%s); install python3-torch or run with /usr/bin/python3" % e,
          file=sys.stderr)
    sys.exit(77)


class LeNet5(nn.Module):
    """Conv(1->6, 5x5, pad 2) - Relu - MaxPool 2 - Conv(6->16, 5x5) - Relu - MaxPool 2
    - Flatten(400) - Linear(400->120) - Relu - Linear(120->84) - Relu - Linear(84->10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """Conv3x3 - BN - ReLU - Conv3x3 - BN, + shortcut (identity, or Conv 1x1 stride s + BN), ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + s)


class ResNet8(nn.Module):
    """Stem Conv3x3 (1->16) + BN + ReLU; blocks 16->16 s1, 16->32 s2, 32->64 s2;
    global average pool - flatten - Linear(64->10)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


MODELS = {"lenet5": LeNet5, "resnet8": ResNet8}


def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def batches(args, n_needed, gen):
    """A list of (images, labels) batches, cycled by the caller."""
    if args.data == "fmnist":
        images = read_idx_gz(os.path.join(args.fmnist, "train-images-idx3-ubyte.gz"))
        labels = read_idx_gz(os.path.join(args.fmnist, "train-labels-idx1-ubyte.gz")).long()
        x = (images.float().unsqueeze(1) / 255.0 - 0.2860) / 0.3530
        order = torch.randperm(x.shape[0], generator=gen)
        out = []
        for b in range(min(n_needed, x.shape[0] // args.batch)):
            idx = order[b * args.batch:(b + 1) * args.batch]
            out.append((x[idx].contiguous(), labels[idx].contiguous()))
        return out
    n = min(n_needed, 16)  # a few distinct random batches are enough for timing
    return [(torch.randn(args.batch, 1, 28, 28, generator=gen),
             torch.randint(0, 10, (args.batch,), generator=gen)) for _ in range(n)]


def bench(name, args):
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    model = MODELS[name]()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    data = batches(args, args.warmup + args.iters, gen)

    def step(i):
        x, y = data[i % len(data)]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for i in range(args.warmup):
        step(i)
    times = []
    i = args.warmup
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.iters):
            loss = step(i)
            i += 1
        times.append(time.perf_counter() - t0)
    seconds = min(times)  # the least disturbed round: other load only slows a round down
    times.sort()
    return {
        "model": name,
        "images_per_s": round(args.iters * args.batch / seconds, 1),
        "batch": args.batch,
        "threads": args.threads,
        "iters": args.iters,
        "rounds": args.rounds,
        "ms_per_step": round(1000.0 * seconds / args.iters, 3),
        "ms_per_step_median": round(1000.0 * times[len(times) // 2] / args.iters, 3),
        "last_loss": round(float(loss), 4),
        "data": args.data,
        "torch": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="lenet5,resnet8")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", choices=["random", "fmnist"], default="random")
    p.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    names = [m for m in args.models.split(",") if m]
    for m in names:
        if m not in MODELS:
            p.error("unknown model '%s' (known: %s)" % (m, ", ".join(sorted(MODELS))))
    if min(args.iters, args.rounds, args.batch, args.threads) < 1 or args.warmup < 0:
        p.error("--iters, --rounds, --batch and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    for m in names:
        print(json.dumps(bench(m, args)), flush=True)


if __name__ == "__main__":
    main()
