"""Train the CRNN plate reader (CTC) on synthetic plates + TRAIN-split real crops and scene plates.

python train_reader.py --synth .work/synth_reader_40k.npz --epochs 6 --out .work/reader.pt
"""
import argparse
import io
import math
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

import nets
import realdata

CH2IDX = {c: i + 1 for i, c in enumerate(nets.CHARS)}


def encode(text):
    return [CH2IDX[c] for c in text if c in CH2IDX]


def greedy_decode(probs):
    """probs: [N,T,37] -> list of (text, conf)."""
    out = []
    p = probs.max(-1)
    for vals, idx in zip(p.values.tolist(), p.indices.tolist()):
        s, conf, prev = [], 1.0, 0
        cur = None
        for v, k in zip(vals, idx):
            if k != 0 and k != prev:
                if cur is not None:
                    conf *= cur
                s.append(nets.CHARS[k - 1])
                cur = v
            elif k != 0 and k == prev:
                cur = max(cur, v)
            prev = k
        if cur is not None:
            conf *= cur
        out.append(("".join(s), conf if s else 0.0))
    return out


# ----------------------------------------------------------------------------- real-data augmentation
def gray_photometric(rng, g):
    """g: PIL L image at capture resolution -> PIL L."""
    if rng.random() < 0.3:
        g = g.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    a = np.asarray(g, np.float32)
    if rng.random() < 0.5:
        a = (a - 128) * rng.uniform(0.4, 1.3) + 128 + rng.uniform(-50, 50)
    if rng.random() < 0.2:  # shadow / glare
        h, w = a.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = rng.uniform(0, 2 * math.pi)
        side = (xx - rng.uniform(0, w)) * math.cos(t) + (yy - rng.uniform(0, h)) * math.sin(t) > 0
        a = np.where(side, a * rng.uniform(0.4, 0.8), a) if rng.random() < 0.6 else a + side * rng.uniform(20, 80)
    a = np.clip(a, 0, 255)
    if rng.random() < 0.3:
        a = 255 * (a / 255) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.5:
        a = a + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 12), a.shape)
    g = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if rng.random() < 0.4:
        buf = io.BytesIO()
        g.save(buf, "JPEG", quality=rng.randint(15, 90))
        g = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    return g


def finish(rng, g, plate_w):
    """Downscale to a random capture resolution, degrade, resize to 128x32 (random resampler)."""
    target = math.exp(rng.uniform(math.log(36), math.log(max(40, min(320, plate_w)))))
    sc = target / max(1, plate_w)
    if sc < 0.95:
        g = g.resize((max(8, int(g.width * sc)), max(4, int(g.height * sc))), Image.BILINEAR)
    if rng.random() < 0.85:
        g = gray_photometric(rng, g)
    r = rng.random()
    f = Image.BILINEAR if r < 0.8 else (Image.BICUBIC if r < 0.9 else Image.NEAREST)
    if rng.random() < 0.1:
        g = g.rotate(rng.uniform(-4, 4), Image.BILINEAR, expand=False, fillcolor=int(np.asarray(g).mean()))
    return np.asarray(g.resize((128, 32), f), np.uint8)


def aug_crop(rng, arr):
    """Real crops/ image (the whole image is the plate crop)."""
    h, w = arr.shape
    g = Image.fromarray(arr, "L")
    if rng.random() < 0.7:
        l, t = rng.uniform(0, 0.05) * w, rng.uniform(0, 0.07) * h
        r, b = w - rng.uniform(0, 0.05) * w, h - rng.uniform(0, 0.07) * h
        g = g.crop((int(l), int(t), int(r), int(b)))
    elif rng.random() < 0.5:  # pad outwards (detector-style looser crop)
        pl, pt = int(rng.uniform(0, 0.1) * w), int(rng.uniform(0, 0.15) * h)
        pr, pb = int(rng.uniform(0, 0.1) * w), int(rng.uniform(0, 0.15) * h)
        c = Image.new("L", (w + pl + pr, h + pt + pb), int(rng.uniform(0, 255)))
        c.paste(g, (pl, pt))
        g = c
    return finish(rng, g, w)


def aug_region(rng, arr, box, jitter=0.08):
    """Scene plate: detector-style crop (10%/15% expansion) with edge jitter."""
    H, W = arr.shape
    x, y, w, h = box
    j = [rng.uniform(-jitter, jitter) for _ in range(4)]
    l, t = x - (0.10 + j[0]) * w, y - (0.15 + j[1]) * h
    r, b = x + w + (0.10 + j[2]) * w, y + h + (0.15 + j[3]) * h
    g = Image.fromarray(arr, "L").crop((int(max(0, l)), int(max(0, t)), int(min(W, r)), int(min(H, b))))
    return finish(rng, g, w)


def val_crop_exact(arr, box):
    H, W = arr.shape
    x, y, w, h = box
    l, t, r, b = x - 0.10 * w, y - 0.15 * h, x + w + 0.10 * w, y + h + 0.15 * h
    g = Image.fromarray(arr, "L").crop((int(max(0, l)), int(max(0, t)), int(min(W, r)), int(min(H, b))))
    return np.asarray(g.resize((128, 32), Image.BILINEAR), np.uint8)


def load_val():
    """Validation real material prepared exactly as the contract (for monitoring only)."""
    crops, scenes = [], []
    for r in realdata.crop_rows():
        if realdata.is_val(r["file"]):
            im = Image.open(f"{realdata.DATA}/crops/{r['file']}")
            g = Image.fromarray(realdata.luma_u8(im), "L").resize((128, 32), Image.BILINEAR)
            crops.append((np.asarray(g), r["plate"]))
    for r in realdata.scene_rows():
        if realdata.is_val(r["file"]):
            im = Image.open(f"{realdata.DATA}/scenes/{r['file']}")
            scenes.append((val_crop_exact(realdata.luma_u8(im), r["box"]), r["plate"]))
    return crops, scenes


def evaluate(model, items, bs=128):
    model.eval()
    ok = 0
    with torch.no_grad():
        for i in range(0, len(items), bs):
            x = torch.from_numpy(np.stack([a for a, _ in items[i:i + bs]])).float().div(255).unsqueeze(1)
            for (t, _), (_, lab) in zip(greedy_decode(model(x)), items[i:i + bs]):
                ok += t == lab
    model.train()
    return ok / max(1, len(items))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--synth", nargs="+", required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--crop-os", type=int, default=8, help="oversampling of real crops per epoch")
    ap.add_argument("--region-os", type=int, default=16, help="oversampling of real scene plates per epoch")
    ap.add_argument("--synth-frac", type=float, default=1.0, help="fraction of synthetic set used per epoch")
    ap.add_argument("--init", default=None)
    ap.add_argument("--init-onnx", default=None, help="start from an exported reader (nets.reader_from_onnx)")
    ap.add_argument("--out", default=".work/reader.pt")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="base")
    ap.add_argument("--model", default="conv", choices=["conv", "lstm"])
    ap.add_argument("--det-onnx", default=None, help="detector used to get realistic crop boxes on TRAIN scenes")
    ap.add_argument("--gt-jitter", type=float, default=0.08)
    ap.add_argument("--easy", nargs="*", default=[], help="easy curriculum sets (always fully used)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    imgs, labels = [], []
    for p in args.synth:
        d = np.load(p)
        imgs.append(d["images"])
        labels += [str(s) for s in d["labels"]]
    n_hard = sum(len(a) for a in imgs)
    for p in args.easy:
        d = np.load(p)
        imgs.append(d["images"])
        labels += [str(s) for s in d["labels"]]
    synth_imgs = np.concatenate(imgs)
    crops, regions = realdata.load_reader_cache()
    val_crops, val_scenes = load_val()
    alt = [[] for _ in regions]
    if args.det_onnx:
        db = realdata.detector_boxes_for_train(args.det_onnx)
        train_rows = [r for r in realdata.scene_rows() if not realdata.is_val(r["file"])]
        for i, r in enumerate(train_rows):
            offx, offy = r["box"][0] - regions[i][1][0], r["box"][1] - regions[i][1][1]
            alt[i] = [(bx - offx, by - offy, bw, bh) for bx, by, bw, bh in db.get(r["file"], [])]
        print("detector boxes for", sum(1 for a in alt if a), "train scenes", flush=True)
    print(f"synthetic {len(synth_imgs)}  real crops {len(crops)}  scene plates {len(regions)}  "
          f"val crops {len(val_crops)} val scenes {len(val_scenes)}", flush=True)

    model = nets.make_reader(args.model, args.size)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    elif args.init_onnx:
        calib = np.stack([aug_crop(random.Random(i), crops[i % len(crops)][0]) for i in range(256)]
                         + [synth_imgs[i] for i in range(0, len(synth_imgs), max(1, len(synth_imgs) // 256))])
        model = nets.reader_from_onnx(args.init_onnx, torch.from_numpy(calib).float().div(255).unsqueeze(1))
        print(f"from {args.init_onnx}: val crops {evaluate(model, val_crops):.3f} "
              f"val scene-plates {evaluate(model, val_scenes):.3f}", flush=True)
    print("params", sum(p.numel() for p in model.parameters()), flush=True)
    n_syn = int(n_hard * args.synth_frac)
    n_easy = len(synth_imgs) - n_hard
    per_epoch = n_syn + n_easy + len(crops) * args.crop_os + len(regions) * args.region_os
    steps = args.epochs * (per_epoch // args.bs)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.08)
    step = 0
    t0 = time.time()
    for ep in range(args.epochs):
        order = [("s", i) for i in rng.sample(range(n_hard), n_syn)]
        order += [("s", i) for i in range(n_hard, len(synth_imgs))]
        order += [("c", i) for i in range(len(crops))] * args.crop_os
        order += [("r", i) for i in range(len(regions))] * args.region_os
        rng.shuffle(order)
        tot, nb = 0.0, 0
        for bi in range(per_epoch // args.bs):
            batch = order[bi * args.bs:(bi + 1) * args.bs]
            xs, ys = [], []
            for kind, i in batch:
                if kind == "s":
                    xs.append(synth_imgs[i]); ys.append(labels[i])
                elif kind == "c":
                    xs.append(aug_crop(rng, crops[i][0])); ys.append(crops[i][1])
                else:
                    if alt[i] and rng.random() < 0.6:
                        xs.append(aug_region(rng, regions[i][0], rng.choice(alt[i]), jitter=0.04))
                    else:
                        xs.append(aug_region(rng, regions[i][0], regions[i][1], jitter=args.gt_jitter))
                    ys.append(regions[i][2])
            x = torch.from_numpy(np.stack(xs)).float().div(255).unsqueeze(1)
            if rng.random() < 0.5:  # random inversion-free intensity jitter on the whole batch
                x = (x * rng.uniform(0.8, 1.1) + rng.uniform(-0.05, 0.05)).clamp(0, 1)
            tg = [encode(t) for t in ys]
            targets = torch.tensor(sum(tg, []), dtype=torch.long)
            tl = torch.tensor([len(t) for t in tg], dtype=torch.long)
            logits = model.logits(x)  # N,T,C
            lp = F.log_softmax(logits, -1).permute(1, 0, 2)
            il = torch.full((x.shape[0],), lp.shape[0], dtype=torch.long)
            loss = F.ctc_loss(lp, targets, il, tl, blank=0, zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            tot += loss.item(); nb += 1
            if bi % 100 == 0:
                print(f"ep {ep} it {bi}/{per_epoch // args.bs} loss {tot / nb:.3f} "
                      f"{(time.time() - t0) / 60:.1f} min", flush=True)
        acc_c = evaluate(model, val_crops)
        acc_s = evaluate(model, val_scenes)
        print(f"== epoch {ep} loss {tot / max(1, nb):.3f} val crops {acc_c:.3f} val scene-plates {acc_s:.3f} "
              f"time {(time.time() - t0) / 60:.1f} min", flush=True)
        torch.save(model.state_dict(), args.out)
    print("done", args.out, flush=True)


if __name__ == "__main__":
    main()
