"""PyTorch side of the learning-curve benchmark (`gantry bench learn`).

Trains the same GAN-INT-CLS (G and D of pytorch_gan_int_cls.py at the sizes
gantry exported, DCGAN initialisation as paper.md §2) from scratch on the
renders and caption embeddings that `gantry bench learn --export DIR` wrote,
with the same step: D on (real, right), ½ (wrong, right), ½ (fake, right); G on
the B embeddings plus B/2 interpolations; the export's captions_averaged
caption embeddings averaged per image (the paper: 4); a random horizontal flip; Adam 2e-4, β1 0.5, lr halved every 100
epochs; with `--match-loss W`, W times the matching term in G's loss (the
exported image encoder θ, frozen, ranks each picture's text against other
classes'). At every line it draws the evaluation captions with their fixed z (G
in eval mode) into DIR/gen-STEP.u8, the first captions under 64 z each into
DIR/div-STEP.u8 (the diversity reading), and appends D's mean scores to
DIR/points.jsonl; `gantry bench learn-score DIR` reads them with the probe and
prints lines in gantry's format, so the two curves sit side by side.

Lockstep (`bench learn --export DIR --lockstep`, which also trains gantry): G
and D start from gantry's initial weights (init_*.safetensors) and every step
takes gantry's draws from DIR/tape.bin (batch, flips, captions averaged, z,
wrong images) instead of its own, and its losses go to
DIR/steps.pytorch.jsonl beside gantry's steps.gantry.jsonl: the two runs then
differ only by the arithmetic of the two programs, which learn-score reports.

    .venv/bin/python bench/pytorch_learn.py DIR [--threads 1] [--device cuda]
"""
import argparse
import json
import os
import time

import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from pytorch_gan_int_cls import Discriminator, Generator, bce, conv, judge, lrelu, update  # noqa: E402


class Downsampler(nn.Module):
    """gantry's image trunk (src/model/mod.rs, Downsampler): 64 -> 32 -> 16 ->
    8 -> 4, strided 4x4 convolutions, batch norm from the second, LeakyReLU."""

    def __init__(self, w):
        super().__init__()
        self.down32 = conv(3, w, 4, 2, 1)
        self.down16, self.down16_bn = conv(w, w * 2, 4, 2, 1), nn.BatchNorm2d(w * 2)
        self.down8, self.down8_bn = conv(w * 2, w * 4, 4, 2, 1), nn.BatchNorm2d(w * 4)
        self.down4, self.down4_bn = conv(w * 4, w * 8, 4, 2, 1), nn.BatchNorm2d(w * 8)

    def forward(self, x):
        h = lrelu(self.down32(x))
        h = lrelu(self.down16_bn(self.down16(h)))
        h = lrelu(self.down8_bn(self.down8(h)))
        h = lrelu(self.down4_bn(self.down4(h)))
        return h.flatten(1)


class ImageEncoder(nn.Module):
    """The joint embedding's image side θ (src/model/image_encoder.rs)."""

    def __init__(self, width, emb):
        super().__init__()
        self.body = Downsampler(width)
        self.projection = nn.Linear(width * 8 * 4 * 4, emb)

    def forward(self, x):
        return self.projection(self.body(x))


def masked_hinge(compat, mask):
    """gantry's symmetric_hinge_where: the DS-SJE hinge in both directions over
    the pairs `mask` keeps, divided by B²."""
    diag = compat.diagonal()
    by_image = (compat - diag[:, None] + 1.0).relu()
    by_text = (compat - diag[None, :] + 1.0).relu()
    return ((by_image + by_text) * mask).sum() / compat.shape[0] ** 2


def dcgan_init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def load(path, dtype, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


def read_safetensors(path, allow_f16=False):
    """{name: tensor} of a safetensors file of f32 tensors, or f16 ones read
    as f32 where allowed (shipped models store f16), without a dependency."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": torch.float32, "F16": torch.float16 if allow_f16 else None}.get(info["dtype"])
        if dtype is None:
            raise SystemExit(f"{path}: {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        raw = bytearray(data[8 + n + start:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]).float()
    return out


# gantry's names for G's and D's layers -> this script's.
RENAMES = {
    "generator": [("text_projection", "text"), ("to_rgb", "rgb")],
    "discriminator": [("text_projection", "text"), ("down", "d")],
}


def load_gantry(module, path, prefix, allow_f16=False):
    """Loads gantry's weights (G, D or the text encoder) into `module`; every
    tensor must land."""
    state = {}
    for name, tensor in read_safetensors(path, allow_f16).items():
        name = name.removeprefix(prefix + ".")
        for old, new in RENAMES.get(prefix, []):
            if name.startswith(old):
                name = new + name[len(old):]
        state[name] = tensor
    mine = {k for k in module.state_dict() if not k.endswith("num_batches_tracked")}
    if set(state) != mine:
        raise SystemExit(f"{path}: names differ: only gantry {sorted(set(state) - mine)}, "
                         f"only here {sorted(mine - set(state))}")
    module.load_state_dict(state, strict=False)


class Tape:
    """The draws of each of gantry's steps (layout in src/learn.rs, Tape)."""

    def __init__(self, path, b, k, g_batch, nz, fresh, cls, follow, text_dim=0):
        self.f = open(path, "rb")
        self.b, self.k, self.g_batch, self.nz, self.fresh, self.cls = b, k, g_batch, nz, fresh, cls
        self.follow = follow
        self.text_dim = text_dim  # with text noise: the embedding size, else 0

    def take(self, dtype, count):
        size = torch.tensor([], dtype=dtype).element_size() * count
        raw = self.f.read(size)
        waited = 0.0
        while len(raw) < size and waited < self.follow:
            # gantry is still writing the tape: wait for its next step.
            time.sleep(0.5)
            waited += 0.5
            more = self.f.read(size - len(raw))
            if more:
                raw += more
                waited = 0.0
        if len(raw) != size:
            raise SystemExit("tape.bin ended before the last step: was gantry's lockstep run cut "
                             "short? (--follow SECONDS waits for a run still going)")
        return torch.frombuffer(bytearray(raw), dtype=dtype).clone()

    def next(self):
        b, nz = self.b, self.nz
        step = {"idx": self.take(torch.int32, b).long(), "flip": self.take(torch.uint8, b).bool(),
                "picks": self.take(torch.uint8, b * self.k).long().view(b, self.k),
                "z": self.take(torch.float32, self.g_batch * nz).view(self.g_batch, nz)}
        if self.fresh:
            step["z_d"] = self.take(torch.float32, b * nz).view(b, nz)
        if self.cls:
            step["wrong"] = self.take(torch.int32, b).long()
            step["wrong_flip"] = self.take(torch.uint8, b).bool()
        if self.text_dim:
            step["text_noise"] = self.take(torch.float32, self.g_batch * self.text_dim).view(
                self.g_batch, self.text_dim)
        return step


def write_pictures(path, images):
    """Images in [-1, 1] as u8 RGB, written whole or not at all."""
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    with open(path + ".tmp", "wb") as f:
        f.write(bytes(pixels.contiguous().untyped_storage()))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="override the exported step count")
    ap.add_argument("--follow", type=float, default=0.0,
                    help="lockstep: wait up to this many seconds for each of gantry's steps "
                         "(run beside gantry's lockstep run)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    meta = json.load(open(os.path.join(args.dir, "meta.json")))
    learn = meta["learn"]
    seed = learn["seed"]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)

    n, k, e = meta["train_images"], meta["captions_per_image"], meta["embedding_dim"]
    m = meta["eval_images"]
    images = load(os.path.join(args.dir, "images.u8"), torch.uint8, (n, 3, 64, 64)).to(dev)
    classes = load(os.path.join(args.dir, "classes.u32"), torch.int32, (n,)).long()
    train = load(os.path.join(args.dir, "train_index.u32"), torch.int32, (-1,)).long()
    emb = load(os.path.join(args.dir, "embeddings.f32"), torch.float32, (n, k, e)).to(dev)
    eval_text = load(os.path.join(args.dir, "eval_text.f32"), torch.float32, (m, e)).to(dev)
    eval_z = load(os.path.join(args.dir, "eval_z.f32"), torch.float32, (m, meta["nz"])).to(dev)
    # Diversity: the first captions, each under its own block of z (older exports have none).
    diverse, per = meta.get("diverse_captions", 0), meta.get("pictures_per_caption", 0)
    if diverse:
        diverse_z = load(os.path.join(args.dir, "diverse_z.f32"), torch.float32,
                         (diverse * per, meta["nz"])).to(dev)

    g = Generator(nz=meta["nz"], nt=meta["nt"], ngf=meta["ngf"], emb=e,
                  upsampling=learn.get("upsampling", "transposed")).to(dev)
    g.channels_last_on_cpu = True  # the layout gantry computes in (same arithmetic)
    d = Discriminator(ndf=meta["ndf"], nt=meta["nt"], emb=e,
                      minibatch_std=learn.get("minibatch_std", False),
                      joint_norm=learn.get("d_joint_norm", "batch")).to(dev)
    lockstep = os.path.exists(os.path.join(args.dir, "tape.bin"))
    if lockstep:
        load_gantry(g, os.path.join(args.dir, "init_generator.safetensors"), "generator")
        load_gantry(d, os.path.join(args.dir, "init_discriminator.safetensors"), "discriminator")
    else:
        dcgan_init(g)
        dcgan_init(d)
    # The matching term (`--match-loss W`): the joint embedding's image
    # encoder, frozen and in eval mode, asks each of G's pictures for the B
    # real texts to match its own text better than other classes' texts
    # (`--match-negatives image`: than every other picture's text).
    match_w = learn.get("match_loss", 0.0)
    ms_w = learn.get("mode_seeking", 0.0)
    # Noise on the text G draws from (`--text-noise S`): S times each
    # dimension's spread over the training images' captions, or
    # (`--text-noise-along phrasings`) Gaussian noise with the covariance of
    # a training image's captions about their mean (its symmetric square
    # root; `statements`: about the mean of its captions that state the same
    # attributes); D judges against the captions' own text.
    text_noise = learn.get("text_noise", 0.0)
    along = learn.get("text_noise_along", "dimensions")
    spread = None
    if text_noise > 0:
        own = emb[train.to(emb.device)]
        if along in ("phrasings", "statements"):
            own = own.double()
            if along == "phrasings":
                dev_ = (own - own.mean(1, keepdim=True)).reshape(-1, e)
                freedom = own.shape[0] * (own.shape[1] - 1)
            else:
                # `statements`: about the mean of the picture's captions that
                # state the same attributes (caption_groups.u32, [N, K]).
                groups = load(os.path.join(args.dir, "caption_groups.u32"), torch.int32, (n, k)).long()
                groups = groups[train].to(own.device)
                m = own.shape[0]
                key = (groups + torch.arange(m, device=own.device)[:, None] * k).reshape(-1)
                flat = own.reshape(-1, e)
                sums = torch.zeros(m * k, e, dtype=own.dtype, device=own.device).index_add_(0, key, flat)
                counts = torch.zeros(m * k, dtype=own.dtype, device=own.device).index_add_(
                    0, key, torch.ones(m * k, dtype=own.dtype, device=own.device))
                dev_ = flat - (sums / counts.clamp_min(1)[:, None])[key]
                freedom = m * k - int((counts > 0).sum())
            cov = dev_.T @ dev_ / freedom
            values, vectors = torch.linalg.eigh(cov)
            spread = ((vectors * values.clamp_min(0).sqrt()[None]) @ vectors.T).float()
        else:
            spread = own.reshape(-1, e).std(0, keepdim=True)
    negatives_by_class = learn.get("match_negatives", "class") == "class"
    ie = None
    if match_w > 0:
        ie = ImageEncoder(meta["image_encoder_width"], e).to(dev)
        load_gantry(ie, os.path.join(args.dir, "image_encoder.safetensors"), "image_encoder")
        ie.eval()
        for p in ie.parameters():
            p.requires_grad_(False)
    lr = learn["lr"]
    opt_g = torch.optim.Adam(g.parameters(), lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr, betas=(0.5, 0.999))

    b = learn["batch"]
    half = b // 2
    variant = learn["variant"]
    cls = variant in ("gan-cls", "gan-int-cls")
    interp = variant in ("gan-int", "gan-int-cls")
    beta = meta["interpolation_beta"]
    averaged = min(meta["captions_averaged"], k)
    wrong_mode = learn["wrong"]  # class | image | sibling
    d_batches = learn.get("d_batches", "separate")  # separate | joint | real-wrong
    by_class = wrong_mode == "class"
    fresh = learn["fresh_noise_for_g"]
    steps = args.steps or learn["steps"]
    every = learn["every"]
    per_epoch = meta["steps_per_epoch"]
    train_classes = classes[train]

    def batch_images(idx, flip=None):
        x = images[idx.to(dev)].float() / 127.5 - 1.0
        if flip is None:
            flip = torch.rand(len(idx), generator=gen) < 0.5
        x[flip.to(dev)] = x[flip.to(dev)].flip(3)
        return x

    if wrong_mode == "sibling":
        # Siblings: the training images by content (colour, shape, count,
        # centre), and for each content and attribute the contents that
        # differ from it in that attribute alone.
        content = load(os.path.join(args.dir, "content.u32"), torch.int32, (n, 4)).tolist()
        members = {}
        for i in train.tolist():
            members.setdefault(tuple(content[i]), []).append(i)
        keys = sorted(members)
        neighbours = {key: [[o for o in keys if o[a] != key[a]
                             and all(o[j] == key[j] for j in range(4) if j != a)]
                            for a in range(4)] for key in keys}

    def sibling_of(src):
        # A random attribute that has siblings, a random sibling content, a
        # random image of it (None where the image has no sibling).
        key = tuple(content[src])
        for a in torch.randperm(4, generator=gen).tolist():
            others = neighbours[key][a]
            if others:
                group = members[others[torch.randint(len(others), (1,), generator=gen).item()]]
                return group[torch.randint(len(group), (1,), generator=gen).item()]
        return None

    def wrong_of(idx):
        # For each image another training image: of another class, any other,
        # or at the even places a sibling (any other at the odd places and
        # where it has none).
        out = torch.empty_like(idx)
        for i, src in enumerate(idx.tolist()):
            if wrong_mode == "sibling" and i % 2 == 0:
                j = sibling_of(src)
                if j is not None:
                    out[i] = j
                    continue
            while True:
                j = train[torch.randint(len(train), (1,), generator=gen)].item()
                if (classes[j] != classes[src]) if by_class else (j != src):
                    out[i] = j
                    break
        return out

    def text_of(idx, picks=None):
        if picks is None:
            picks = torch.stack([torch.randperm(k, generator=gen)[:averaged] for _ in idx])
        return emb[idx.to(dev)[:, None], picks.to(dev)].mean(1)

    g_batch = b + (half if interp else 0)
    tape = Tape(os.path.join(args.dir, "tape.bin"), b, averaged, g_batch, meta["nz"], fresh,
                cls, args.follow, e if text_noise > 0 else 0) if lockstep else None
    step_log = open(os.path.join(args.dir, "steps.pytorch.jsonl"), "w") if lockstep else None

    sums = torch.zeros(3, device=dev)
    window = 0
    trained = 0.0
    order, cursor = None, None
    points = open(os.path.join(args.dir, "points.jsonl"), "w")
    start = "gantry's initial G and D and gantry's draws (lockstep)" if lockstep else "scratch"
    print(f"# pytorch {torch.__version__}: {variant} from {start}, batch {b}, {steps} steps, "
          f"{len(train)} training images, wrong images: {wrong_mode}, {dev}, "
          f"{torch.get_num_threads()} threads", flush=True)
    for step in range(1, steps + 1):
        started = time.perf_counter()
        epoch = (step - 1) // per_epoch
        step_lr = lr * 0.5 ** (epoch // meta["lr_halve_every_epochs"])
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = step_lr
        taken = tape.next() if tape else {}
        if tape:
            idx = taken["idx"]
        else:
            if order is None or cursor + b > len(order):
                order = train[torch.randperm(len(train), generator=gen)]
                cursor = 0
            idx = order[cursor:cursor + b]
            cursor += b
        real = batch_images(idx, taken.get("flip"))
        t = text_of(idx, taken.get("picks"))
        if interp:
            t_all = torch.cat([t, beta * t[:half] + (1 - beta) * t[half:]], 0)
        else:
            t_all = t
        z = taken["z"] if tape else torch.randn(len(t_all), meta["nz"], generator=gen)
        if text_noise > 0:
            eps = taken["text_noise"] if tape else torch.randn(len(t_all), e, generator=gen)
            eps = eps.to(dev)
            t_in = t_all + (eps @ spread if along in ("phrasings", "statements") else eps * spread) * text_noise
        else:
            t_in = t_all
        fake = g(z.to(dev), t_in)
        if fresh:
            z_d = taken["z_d"] if tape else torch.randn(b, meta["nz"], generator=gen)
            with torch.no_grad():
                fake_d = g(z_d.to(dev), t_in[:b])
        else:
            fake_d = fake[:b].detach()
        # D's pairs: (real, right), [(wrong, right)], (fake, right), each
        # in a batch of its own, or all in one (`--d-batches joint`, where G's
        # pictures are then judged beside the same real and wrong pairs), or
        # the real and wrong ones in one (`real-wrong`).
        pairs = [(real, t)]
        if cls:
            wrong = (batch_images(taken["wrong"], taken["wrong_flip"]) if tape
                     else batch_images(wrong_of(idx)))
            pairs.append((wrong, t))
        if d_batches == "joint":
            context = list(pairs)
            scores = judge(d, pairs + [(fake_d, t)], True)
        else:  # G's pictures in a batch of their own
            context = []
            scores = judge(d, pairs, d_batches == "real-wrong") + judge(d, [(fake_d, t)])
        s_real, s_fake = scores[0], scores[-1]
        d_loss = bce(s_real, 1.0)
        if cls:
            s_wrong = scores[1]
            d_loss = d_loss + 0.5 * bce(s_wrong, 0.0)
            fake_weight = 0.5
        else:
            s_wrong = torch.zeros_like(s_real)
            fake_weight = 1.0
        d_loss = d_loss + fake_weight * bce(s_fake, 0.0)
        matched = {}
        # G's further terms: the matching term (`--match-loss W`) and the
        # mode-seeking term (`--mode-seeking W`: G's pictures of the B texts
        # under its own z and under D's z_d should differ as the draws do;
        # D's pictures held fixed).
        terms = []
        if ms_w > 0:
            def mode_seeking():
                apart = (fake[:b] - fake_d).abs().mean()
                drawn_apart = (z[:b].to(dev) - z_d.to(dev)).abs().mean()
                return ms_w / (apart / drawn_apart + 1e-5)
            terms.append(mode_seeking)
        if ie is not None:
            if negatives_by_class:
                batch_classes = classes[idx]
                other = (batch_classes[:, None] != batch_classes[None, :]).float().to(dev)
            else:
                other = 1.0 - torch.eye(b, device=dev)

            def matching():
                matched["g_match"] = masked_hinge(ie(fake[:b]) @ t.T, other)
                return match_w * matched["g_match"]
            terms.insert(0, matching)
        extra = (lambda: sum(term() for term in terms)) if terms else None
        g_loss = update(g, d, opt_g, opt_d, d_loss, fake, t_all, extra, context)
        with torch.no_grad():
            scores = torch.stack([s_real.sigmoid().mean(), s_wrong.sigmoid().mean(),
                                  s_fake.sigmoid().mean()])
            sums += scores
        if step_log:
            line = {"step": step, "d_loss": d_loss.item(), "g_loss": g_loss.item(),
                    "d_real": scores[0].item(), "d_fake": scores[2].item()}
            if cls:
                line["d_wrong"] = scores[1].item()
            if "g_match" in matched:
                line["g_match"] = matched["g_match"].item()
            step_log.write(json.dumps(line) + "\n")
        window += 1
        trained += time.perf_counter() - started
        if step % every == 0 or step == steps:
            g.eval()
            with torch.no_grad():
                drawn = torch.cat([g(eval_z[i:i + 256], eval_text[i:i + 256])
                                   for i in range(0, m, 256)])
                write_pictures(os.path.join(args.dir, f"gen-{step:06d}.u8"), drawn)
                if diverse:
                    varied = torch.cat([g(diverse_z[c * per:(c + 1) * per],
                                          eval_text[c:c + 1].expand(per, -1))
                                        for c in range(diverse)])
                    write_pictures(os.path.join(args.dir, f"div-{step:06d}.u8"), varied)
            g.train()
            mean = (sums / window).tolist()
            point = {"step": step, "d_real": mean[0], "d_wrong": mean[1] if cls else None,
                     "d_fake": mean[2], "seconds": trained}
            points.write(json.dumps(point) + "\n")
            points.flush()
            print(f"pytorch step={step} d_real={mean[0]:.3f} d_fake={mean[2]:.3f} s={trained:.0f}",
                  flush=True)
            sums.zero_()
            window = 0
    if step_log:
        step_log.close()


if __name__ == "__main__":
    main()
