"""PyTorch eager (or, with --compile, torch.compile) baseline for `gantry bench train`: the same architecture
(paper.md §2-3, preset reed) and the same GAN-INT-CLS step (D update on
(real, right), (wrong, right), (fake, right); G update on 64 + 32
interpolated embeddings), on synthetic inputs. Prints images_per_s=<float>.

    .venv/bin/python bench/pytorch_gan_int_cls.py --batch 64 --steps 10 [--device cuda]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, s=1, p=0):
    return nn.Conv2d(cin, cout, k, s, p, bias=False)


def convt(cin, cout, k, s=1, p=0):
    return nn.ConvTranspose2d(cin, cout, k, s, p, bias=False)


class ResizeConv(nn.Conv2d):
    """A fixed upsampling by 2 (nearest neighbour or bilinear), then a 3x3
    convolution (gantry's `Upsample::Resize`, src/model/generator.rs); its
    weight keeps the name the transposed convolution it replaces had.
    Computed as gantry computes it, as the 4x4 transposed convolution of
    stride 2 whose kernel is tied (per axis the taps k0, k1, k2 become k2,
    k1 + k2, k0 + k1, k0): the same values as F.interpolate + the 3x3
    convolution up to rounding, and the same arithmetic as gantry's, so the
    lockstep compares like with like. Bilinear upsampling is nearest
    neighbour's followed by a [1, 2, 1]/4 blur per axis, which commutes with
    the 3x3 convolution: the blur comes after it, per channel, zero-padded
    (as in gantry, the same as F.interpolate(bilinear) + the convolution
    away from the border)."""

    # Row y says which of the 3x3 kernel's taps add up to tap y of 4.
    TIE = torch.tensor([[0., 0., 1.], [0., 1., 1.], [1., 1., 0.], [1., 0., 0.]])
    BLUR = torch.outer(torch.tensor([.25, .5, .25]), torch.tensor([.25, .5, .25]))

    def __init__(self, cin, cout, filter="nearest"):
        super().__init__(cin, cout, 3, 1, 1, bias=False)
        if filter not in ("nearest", "bilinear"):
            raise SystemExit(f"unknown filter {filter!r}")
        self.blurs = filter == "bilinear"

    def forward(self, x):
        tie = self.TIE.to(self.weight)
        w = (tie @ self.weight @ tie.T).transpose(0, 1)
        y = F.conv_transpose2d(x, w, stride=2, padding=1)
        if self.blurs:
            c = y.shape[1]
            blur = self.BLUR.to(y)[None, None].expand(c, 1, 3, 3).contiguous()
            y = F.conv2d(y, blur, padding=1, groups=c)
        return y


def double(cin, cout, filter):
    """One of G's doublings: the paper's 4x4 transposed convolution of
    stride 2 (filter None), or a resize-convolution."""
    return ResizeConv(cin, cout, filter) if filter else convt(cin, cout, 4, 2, 1)


UPSAMPLINGS = ["transposed", "resize-last", "resize", "bilinear"]


class Residual(nn.Module):
    def __init__(self, c, b, act):
        super().__init__()
        self.reduce, self.reduce_bn = conv(c, b, 1), nn.BatchNorm2d(b)
        self.conv, self.conv_bn = conv(b, b, 3, 1, 1), nn.BatchNorm2d(b)
        self.expand, self.expand_bn = conv(b, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.act = act

    def forward(self, x):
        h = self.act(self.reduce_bn(self.reduce(x)))
        h = self.act(self.conv_bn(self.conv(h)))
        h = self.expand_bn(self.expand(h))
        return self.act(x + h)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


class Generator(nn.Module):
    # gantry keeps G's maps channels-last on the CPU from the first 4x4 map
    # on (src/model/mod.rs, channels_last); the lockstep sets this to take
    # the same arithmetic. The speed baseline leaves it off: plain eager.
    channels_last_on_cpu = False

    def __init__(self, nz=100, nt=128, ngf=128, emb=1024, upsampling="transposed"):
        super().__init__()
        self.text = nn.Linear(emb, nt)
        self.up4, self.up4_bn = convt(nz + nt, ngf * 8, 4), nn.BatchNorm2d(ngf * 8)
        self.res4 = Residual(ngf * 8, ngf * 2, F.relu)
        # gantry's `upsampling` (src/model/generator.rs): the paper's 4x4
        # transposed convolutions, or nearest-neighbour upsampling and a 3x3
        # convolution at the last doubling ("resize-last") or at every one
        # ("resize"), or bilinear upsampling and a 3x3 convolution at every
        # one ("bilinear").
        if upsampling not in UPSAMPLINGS:
            raise SystemExit(f"unknown upsampling {upsampling!r}")
        maps, last = {"transposed": (None, None), "resize-last": (None, "nearest"),
                      "resize": ("nearest", "nearest"),
                      "bilinear": ("bilinear", "bilinear")}[upsampling]
        self.up8, self.up8_bn = double(ngf * 8, ngf * 4, maps), nn.BatchNorm2d(ngf * 4)
        self.res8 = Residual(ngf * 4, ngf, F.relu)
        self.up16, self.up16_bn = double(ngf * 4, ngf * 2, maps), nn.BatchNorm2d(ngf * 2)
        self.up32, self.up32_bn = double(ngf * 2, ngf, maps), nn.BatchNorm2d(ngf)
        self.rgb = double(ngf, 3, last)

    def forward(self, z, t):
        h = torch.cat([z, lrelu(self.text(t))], 1)[:, :, None, None]
        h = self.up4(h)
        if self.channels_last_on_cpu and h.device.type == "cpu":
            h = h.contiguous(memory_format=torch.channels_last)
        h = self.res4(self.up4_bn(h))
        h = self.res8(self.up8_bn(self.up8(h)))
        h = F.relu(self.up16_bn(self.up16(h)))
        h = F.relu(self.up32_bn(self.up32(h)))
        return torch.tanh(self.rgb(h))


def minibatch_std(h, group=4):
    """h with one more channel: the spread of each feature over a group of
    images (i, i + B/g, ...), averaged over features and positions; gantry's
    `minibatch_std` (Karras et al. 2018)."""
    b, c, hh, ww = h.shape
    g = next(k for k in range(min(group, b), 0, -1) if b % k == 0)
    y = h.view(g, b // g, c, hh, ww)
    y = y - y.mean(0, keepdim=True)
    spread = (y.square().mean(0) + 1e-8).sqrt().mean((1, 2, 3), keepdim=True)
    return torch.cat([h, spread.repeat(g, 1, hh, ww)], 1)


class Discriminator(nn.Module):
    def __init__(self, ndf=64, nt=128, emb=1024, minibatch_std=False, joint_norm="batch"):
        super().__init__()
        self.minibatch_std = minibatch_std
        self.d32 = conv(3, ndf, 4, 2, 1)
        self.d16, self.d16_bn = conv(ndf, ndf * 2, 4, 2, 1), nn.BatchNorm2d(ndf * 2)
        self.d8, self.d8_bn = conv(ndf * 2, ndf * 4, 4, 2, 1), nn.BatchNorm2d(ndf * 4)
        self.d4, self.d4_bn = conv(ndf * 4, ndf * 8, 4, 2, 1), nn.BatchNorm2d(ndf * 8)
        self.res4 = Residual(ndf * 8, ndf * 2, lrelu)
        self.text, self.text_bn = nn.Linear(emb, nt), nn.BatchNorm1d(nt)
        spread = 1 if minibatch_std else 0
        self.joint = conv(ndf * 8 + spread + nt, ndf * 8, 1)
        # gantry's `--d-joint-norm`: batch norm (the paper), or layer norm
        # over each pair's own map ("pair": group norm with one group).
        if joint_norm == "batch":
            self.joint_bn = nn.BatchNorm2d(ndf * 8)
        elif joint_norm == "pair":
            self.joint_ln = nn.GroupNorm(1, ndf * 8)
        else:
            raise SystemExit(f"unknown D joint norm {joint_norm!r}")
        self.pair_norm = joint_norm == "pair"
        self.score = conv(ndf * 8, 1, 4)

    def forward(self, x, t):
        h = lrelu(self.d32(x))
        h = lrelu(self.d16_bn(self.d16(h)))
        h = self.d8_bn(self.d8(h))
        h = self.d4_bn(self.d4(h))
        h = self.res4(h)
        if self.minibatch_std:
            h = minibatch_std(h)
        t = lrelu(self.text_bn(self.text(t)))[:, :, None, None].expand(-1, -1, 4, 4)
        h = self.joint(torch.cat([h, t], 1))
        h = lrelu(self.joint_ln(h) if self.pair_norm else self.joint_bn(h))
        return self.score(h).view(-1)


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def judge(d, pairs, joint=False):
    """D's scores of each (images, texts) pair of batches: each batch in its
    own forward pass, or all in one whose scores are split back (gantry's
    `--d-batches joint`: D's batch norm then sees every kind of pair with
    the same statistics)."""
    if not joint:
        return [d(x, t) for x, t in pairs]
    scores = d(torch.cat([x for x, _ in pairs]), torch.cat([t for _, t in pairs]))
    return list(scores.split([len(x) for x, _ in pairs]))


def update(g, d, opt_g, opt_d, d_loss, fake, t_all, extra=None, context=()):
    """D's update on its loss, then G's through a frozen D on `fake` (G's
    images for the texts `t_all`), judged in one batch beside the `context`
    pairs where given, plus `extra()` where given (a further term of G's
    loss); returns G's loss."""
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    for p in d.parameters():
        p.requires_grad_(False)
    g_loss = bce(judge(d, list(context) + [(fake, t_all)], bool(context))[-1], 1.0)
    if extra is not None:
        g_loss = g_loss + extra()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    for p in d.parameters():
        p.requires_grad_(True)
    return g_loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--upsampling", default="transposed",
                    choices=UPSAMPLINGS,
                    help="how G doubles its maps (gantry's --upsampling)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile G and D (the warm-up steps then include compiling)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    g, d = Generator(upsampling=args.upsampling).to(dev), Discriminator().to(dev)
    if args.compile:
        g, d = torch.compile(g), torch.compile(d)
    print(f"# params G {sum(p.numel() for p in g.parameters())} D {sum(p.numel() for p in d.parameters())}")
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    b, half = args.batch, args.batch // 2
    n = b * 4
    images = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8)
    emb = torch.randn(n, 10, 1024, device=dev)

    def step():
        idx = torch.randint(0, n, (b,))
        wrong_idx = torch.randint(0, n, (b,))
        real = (images[idx].float() / 127.5 - 1).to(dev)
        wrong = (images[wrong_idx].float() / 127.5 - 1).to(dev)
        caps = torch.randint(0, 10, (b, 4), device=dev)
        t = emb[idx.to(dev)[:, None], caps].mean(1)
        t_all = torch.cat([t, 0.5 * t[:half] + 0.5 * t[half:]], 0)
        z = torch.randn(b + half, 100, device=dev)
        fake = g(z, t_all)
        s_real, s_wrong = d(real, t), d(wrong, t)
        s_fake = d(fake[:b].detach(), t)
        d_loss = bce(s_real, 1.0) + 0.5 * (bce(s_wrong, 0.0) + bce(s_fake, 0.0))
        g_loss = update(g, d, opt_g, opt_d, d_loss, fake, t_all)
        return d_loss.item() + g_loss.item()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    rate = b * args.steps / (time.perf_counter() - start)
    mode = "torch.compile" if args.compile else "eager"
    print(f"# pytorch {torch.__version__} {mode}, batch {b} (+{half} interpolated), {args.steps} steps on {dev}, {torch.get_num_threads()} threads")
    print(f"images_per_s={rate:.2f}")


if __name__ == "__main__":
    main()
