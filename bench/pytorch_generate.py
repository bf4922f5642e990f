"""PyTorch eager baseline for `gantry bench generate`: the same text encoder
and G, with the same weights (read from a gantry model folder, every tensor
must land), in evaluation mode under `torch.inference_mode`, timed the way
gantry times it: caption to 8-bit RGB pixels on the host, i.e. encoding the
caption, φ(t), z, G and the copy back all inside the timed region.

    .venv/bin/python bench/pytorch_generate.py weights/procedural-flowers \
        --batch 1 --batch 64 [--threads 2] [--device cuda]

Prints one line per batch size: `pytorch batch=B ms_per_batch=M`.
`bench/generate.sh` runs it and `gantry bench generate` side by side.
"""
import argparse
import json
import os
import statistics
import sys
import time

import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_gan_int_cls import Generator  # noqa: E402
from pytorch_learn import load_gantry  # noqa: E402

# src/text.rs: Reed's alphabet ('-' twice; a '-' takes the first slot), 201 characters.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{} "
MAX_CHARS = 201
CAPTION = "this flower has five large pink petals with a yellow centre"


def one_hot(caption):
    """[1, 70, 201] as gantry encodes a caption (unknown characters: zeros)."""
    x = torch.zeros(1, len(ALPHABET), MAX_CHARS)
    for i, c in enumerate(caption.strip().lower()[:MAX_CHARS]):
        slot = ALPHABET.find(c)
        if slot >= 0:
            x[0, slot, i] = 1.0
    return x


class TextEncoder(nn.Module):
    """char-CNN-RNN as src/model/text_encoder.rs builds it."""

    def __init__(self, conv_channels, rnn_dim, embedding_dim):
        super().__init__()
        c1, c2, c3 = conv_channels
        self.conv1 = nn.Conv1d(len(ALPHABET), c1, 4)
        self.conv2 = nn.Conv1d(c1, c2, 4)
        self.conv3 = nn.Conv1d(c2, c3, 4)
        self.rnn = nn.GRU(c3, rnn_dim, batch_first=True)
        self.projection = nn.Linear(rnn_dim, embedding_dim)

    def forward(self, x):
        h = F.max_pool1d(F.relu(self.conv1(x)), 3)
        h = F.max_pool1d(F.relu(self.conv2(h)), 3)
        h = F.relu(self.conv3(h))
        out, _ = self.rnn(h.transpose(1, 2))
        return self.projection(out.mean(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="a gantry model folder (model.json and safetensors)")
    ap.add_argument("--batch", type=int, action="append", help="images per batch (repeatable)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with open(os.path.join(args.model, "model.json")) as f:
        card = json.load(f)
    arch = card["architecture"]
    conditioning = arch.get("conditioning", {"kind": "raw"})
    if conditioning["kind"] == "standardised":
        mean = torch.tensor(conditioning["mean"], device=device)
        std = torch.tensor(conditioning["std"], device=device)
    elif conditioning["kind"] != "raw":
        raise SystemExit(f"unknown conditioning {conditioning['kind']!r}")
    te, g = arch["text_encoder"], arch["generator"]
    text_encoder = TextEncoder(te["conv_channels"], te["rnn_dim"], te["embedding_dim"])
    generator = Generator(g["nz"], g["nt"], g["ngf"], g["embedding_dim"],
                          g.get("upsampling", "transposed"))
    load_gantry(text_encoder, os.path.join(args.model, "text_encoder.safetensors"), "text_encoder",
                allow_f16=True)
    load_gantry(generator, os.path.join(args.model, "generator.safetensors"), "generator",
                allow_f16=True)
    text_encoder.to(device).eval()
    generator.to(device).eval()

    def generate(batch):
        with torch.inference_mode():
            t = text_encoder(one_hot(CAPTION).to(device)).expand(batch, -1)
            if conditioning["kind"] == "standardised":
                t = (t - mean) / std
            z = torch.randn(batch, g["nz"], device=device)
            x = generator(z, t)
            pixels = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
            return pixels.permute(0, 2, 3, 1).contiguous().cpu()

    for batch in args.batch or [1, 64]:
        for _ in range(args.warmup):
            generate(batch)
        times = []
        for _ in range(max(args.repeats, 1)):
            start = time.perf_counter()
            generate(batch)
            times.append((time.perf_counter() - start) * 1e3)
        print(f"pytorch batch={batch} ms_per_batch={statistics.median(times):.3f}", flush=True)


if __name__ == "__main__":
    main()
