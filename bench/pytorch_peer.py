#!/usr/bin/python3
"""pytorch_peer.py - the peer llamapro's bench is compared with: the same LLaMA Pro training step
in PyTorch, in fp32 and with bf16 autocast, printing tokens/s.

The configuration is inputs/configs/bench.ini with `llamapro bench --expand 2`: a Llama of width
512, 8 base blocks plus 2 new blocks interleaved (after blocks 4 and 8, their wo and w2 zeroed as
LLaMA Pro initialises them), only the 2 new blocks trainable; 8 heads (no grouping), SwiGLU
hidden 1376, vocabulary 4096, 8 sequences of 256 tokens per step, AdamW (lr 2e-4, betas 0.9/0.95,
weight decay 0.1), gradient clipping at 1.0. As autograd does, nothing below the first trainable
block runs backward.

Run with Debian's Python, which has python3-torch (it is not in the pyenv Python on PATH):
    /usr/bin/python3 bench/pytorch_peer.py [--threads 2] [--steps 5] [--modes fp32,bf16]
Never run by the test suite. Prints one line per mode, e.g.
    peer: torch 1.13.0 fp32 ... tokens/s (median of 5 steps, min .. max)
"""
import argparse
import math
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("pytorch_peer: SKIPPED: PyTorch is not installed for this Python (use /usr/bin/python3 with python3-torch)")
    sys.exit(77)

DIM, HIDDEN, BASE_LAYERS, NEW, HEADS, VOCAB, SEQ, BATCH = 512, 1376, 8, 2, 8, 4096, 256, 8


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(T, hd, theta=10000.0):
    inv = 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd)
    ang = torch.outer(torch.arange(T).float(), inv)  # [T, hd/2]
    return ang.cos(), ang.sin()


def rope(x, cos, sin):
    # interleaved pairs (0,1), (2,3), ... as Meta's Llama and llamapro
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(DIM), RMSNorm(DIM)
        self.wq = nn.Linear(DIM, DIM, bias=False)
        self.wk = nn.Linear(DIM, DIM, bias=False)
        self.wv = nn.Linear(DIM, DIM, bias=False)
        self.wo = nn.Linear(DIM, DIM, bias=False)
        self.w1 = nn.Linear(DIM, HIDDEN, bias=False)
        self.w3 = nn.Linear(DIM, HIDDEN, bias=False)
        self.w2 = nn.Linear(HIDDEN, DIM, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        hd = C // HEADS
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, HEADS, hd).transpose(1, 2)
        k = self.wk(h).view(B, T, HEADS, hd).transpose(1, 2)
        v = self.wv(h).view(B, T, HEADS, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.wo(y)
        h = self.mlp_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        blocks, self.new = [], []
        per = BASE_LAYERS // NEW
        for i in range(BASE_LAYERS):
            blocks.append(Block())
            if (i + 1) % per == 0:  # LLaMA Pro: a copy after every group, identity at init
                b = Block()
                b.load_state_dict(blocks[-1].state_dict())
                nn.init.zeros_(b.wo.weight)
                nn.init.zeros_(b.w2.weight)
                blocks.append(b)
                self.new.append(b)
        self.blocks = nn.ModuleList(blocks)
        self.norm = RMSNorm(DIM)
        self.out = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, tokens, targets, cos, sin, mask):
        x = self.tok(tokens)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        logits = self.out(self.norm(x))
        return F.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1))


def run(mode, steps, warmup, seed):
    torch.manual_seed(seed)
    m = Model()
    for p in m.parameters():
        p.requires_grad_(False)
    trainable = [p for b in m.new for p in b.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    decay = [p for p in trainable if p.dim() == 2]
    nodecay = [p for p in trainable if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=2e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(seed + 1)
    data = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=g)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    cos, sin = rope_tables(SEQ, DIM // HEADS)
    mask = torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), 1)
    times = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if mode == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = m(tokens, targets, cos, sin, mask)
        else:
            loss = m(tokens, targets, cos, sin, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s >= warmup:
            times.append(dt)
    tps = [BATCH * SEQ / t for t in times]
    return statistics.median(tps), min(tps), max(tps), float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--modes", default="fp32,bf16")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for mode in a.modes.split(","):
        if mode not in ("fp32", "bf16"):
            sys.exit(f"--modes: expected fp32 and/or bf16, got '{mode}'")
        med, lo, hi, loss = run(mode, a.steps, a.warmup, a.seed)
        label = "fp32" if mode == "fp32" else "bf16 autocast"
        print(f"peer: torch {torch.__version__} {label}: {med:.0f} tokens/s (median of {a.steps} steps, "
              f"{lo:.0f} .. {hi:.0f}; {a.threads} threads; loss {loss:.4f})", flush=True)


if __name__ == "__main__":
    main()
