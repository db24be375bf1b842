"""Train the stride-4 plate centre detector on synthetic scenes + TRAIN-split real scenes
(with synthetic plates pasted into real scenes in memory).

python train_detector.py --scenes .work/synth_scenes.pkl --steps 3000 --out .work/detector.pt
"""
import argparse
import io
import math
import os
import pickle
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import nets
import realdata
import synth

CANVAS_W, CANVAS_H = 640, 480


def letterbox_scale(w, h, W=CANVAS_W, H=CANVAS_H):
    return min(W / w, H / h)


def load_real_train(cache=os.path.join(realdata.WORK, "real_det_train.pkl")):
    """TRAIN real scenes resized as the letterbox to 640x480 would (PIL bilinear)."""
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f)
    out = []
    for r in realdata.scene_rows():
        if realdata.is_val(r["file"]):
            continue
        im = Image.open(os.path.join(realdata.DATA, "scenes", r["file"])).convert("RGB")
        s = letterbox_scale(im.width, im.height)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR)
        x, y, w, h = r["box"]
        out.append((np.asarray(im), [(x * s, y * s, w * s, h * s)]))
    with open(cache, "wb") as f:
        pickle.dump(out, f)
    return out


def make_sample(rng, img, boxes, P):
    """img: PIL RGB (letterbox scale), boxes [(x,y,w,h)]. Random scale + PxP crop.
    Returns float32 [3,P,P], boxes in patch coords."""
    sc = math.exp(rng.uniform(math.log(0.55), math.log(1.5)))
    if boxes:  # keep plates in a sane pixel range
        bw = max(b[2] for b in boxes)
        sc = min(max(sc, 14 / bw), 220 / bw)
    nw, nh = max(8, int(img.width * sc)), max(8, int(img.height * sc))
    im = img.resize((nw, nh), Image.BILINEAR)
    bx = [(x * sc, y * sc, w * sc, h * sc) for x, y, w, h in boxes]
    if bx and rng.random() < 0.85:
        x, y, w, h = rng.choice(bx)
        cx, cy = x + w / 2, y + h / 2
        ox = int(cx - rng.uniform(0.1, 0.9) * P)
        oy = int(cy - rng.uniform(0.1, 0.9) * P)
    else:
        ox = rng.randint(min(0, nw - P), max(0, nw - P))
        oy = rng.randint(min(0, nh - P), max(0, nh - P))
    arr = np.zeros((P, P, 3), np.uint8)  # letterbox fill = 0
    sx0, sy0 = max(0, ox), max(0, oy)
    sx1, sy1 = min(nw, ox + P), min(nh, oy + P)
    if sx1 > sx0 and sy1 > sy0:
        arr[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox] = np.asarray(im)[sy0:sy1, sx0:sx1]
    out_boxes = [(x - ox, y - oy, w, h) for x, y, w, h in bx]
    a = arr.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        a = a[:, ::-1]
        out_boxes = [(P - x - w, y, w, h) for x, y, w, h in out_boxes]
    if rng.random() < 0.6:
        a = (a - 0.5) * rng.uniform(0.6, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
        a = a * np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
    if rng.random() < 0.1:
        a = np.repeat((a @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None], 3, 2)
    a = np.clip(a, 0, 1)
    return np.ascontiguousarray(a.transpose(2, 0, 1)), out_boxes


def make_targets(boxes, P, stride=4):
    S = P // stride
    hm = np.zeros((S, S), np.float32)
    reg = np.zeros((4, S, S), np.float32)
    regw = np.zeros((S, S), np.float32)
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
    ccx, ccy = (xs + 0.5) * stride, (ys + 0.5) * stride
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        if not (0 <= cx < P and 0 <= cy < P) or w < 4 or h < 2:
            continue
        gx, gy = cx / stride - 0.5, cy / stride - 0.5
        sgx, sgy = max(0.6, w / stride / 6), max(0.5, h / stride / 6)
        g = np.exp(-((xs - gx) ** 2 / (2 * sgx ** 2) + (ys - gy) ** 2 / (2 * sgy ** 2)))
        ix, iy = int(cx // stride), int(cy // stride)
        g[iy, ix] = 1.0
        hm = np.maximum(hm, g)
        l, t, r, b = ccx - x, ccy - y, x + w - ccx, y + h - ccy
        m = (g > 0.3) & (l > 0.5) & (t > 0.5) & (r > 0.5) & (b > 0.5)
        m &= g >= regw
        for k, dd in enumerate((l, t, r, b)):
            reg[k][m] = np.log(np.maximum(dd[m], 0.5) / 16.0)
        regw[m] = g[m]
    return hm, reg, regw


def focal_loss(logit, gt):
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * neg
    npos = pos.sum().clamp(min=1)
    return -(pos_loss.sum() + neg_loss.sum()) / npos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--real-frac", type=float, default=0.45)
    ap.add_argument("--paste-frac", type=float, default=0.4, help="of real samples, paste a synthetic plate")
    ap.add_argument("--init", default=None)
    ap.add_argument("--out", default=".work/detector.pt")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    scenes = []
    for p in args.scenes:
        with open(p, "rb") as f:
            scenes += pickle.load(f)
    real = load_real_train()
    print(f"synthetic scenes {len(scenes)}  real train scenes {len(real)}", flush=True)
    model = nets.Detector()
    if args.init:
        model.load_state_dict(torch.load(args.init))
    print("params", sum(p.numel() for p in model.parameters()), flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    P = args.patch
    t0 = time.time()
    run_h, run_b = 0.0, 0.0
    for step in range(args.steps):
        xs, hms, regs, regws = [], [], [], []
        for _ in range(args.bs):
            if rng.random() < args.real_frac:
                arr, boxes = rng.choice(real)
                img = Image.fromarray(arr)
                boxes = list(boxes)
                if rng.random() < args.paste_frac:
                    res = synth.paste_plate_into(rng, img, forbid=tuple(int(v) for v in boxes[0]))
                    if res is not None:
                        img, (_, b2) = res
                        boxes.append(b2)
            else:
                jpg, items = rng.choice(scenes)
                img = Image.open(io.BytesIO(jpg)).convert("RGB")
                boxes = [b for _, b in items]
            x, bx = make_sample(rng, img, boxes, P)
            hm, reg, regw = make_targets(bx, P)
            xs.append(x); hms.append(hm); regs.append(reg); regws.append(regw)
        x = torch.from_numpy(np.stack(xs))
        hm_t = torch.from_numpy(np.stack(hms)).unsqueeze(1)
        reg_t = torch.from_numpy(np.stack(regs))
        regw_t = torch.from_numpy(np.stack(regws)).unsqueeze(1)
        hm_logit, box_raw = model.raw(x)
        lh = focal_loss(hm_logit, hm_t)
        box_raw = torch.clamp(box_raw, -3.0, 6.0)
        lb = (F.smooth_l1_loss(box_raw, reg_t, reduction="none", beta=0.1) * regw_t).sum() / regw_t.sum().clamp(min=1)
        loss = lh + 2.0 * lb
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        run_h = 0.98 * run_h + 0.02 * lh.item()
        run_b = 0.98 * run_b + 0.02 * lb.item()
        if step % 50 == 0:
            print(f"step {step}/{args.steps} hm {run_h:.3f} box {run_b:.3f} {(time.time() - t0) / 60:.1f} min",
                  flush=True)
        if step % 500 == 499 or step == args.steps - 1:
            torch.save(model.state_dict(), args.out)
    print("done", args.out, flush=True)


if __name__ == "__main__":
    main()
