"""Reference evaluation of detector.onnx + reader.onnx with onnxruntime, implementing exactly the
pre/post-processing contract the Rust side implements (see README.md in this folder).

  python eval_reference.py                       # validation split and full set, crops + scenes
  python eval_reference.py --scenes-dir samples  # any folder with labels.csv (file,plate,x,y,w,h)

Prints exact-plate accuracy on crops (reader on the whole crop image), end-to-end exact accuracy on
scenes (detector -> crop -> reader; correct if any read text equals the label), and detection recall
(any detection with IoU >= 0.3 with the labelled box).
"""
import argparse
import csv
import hashlib
import os
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_val(filename):
    return int(hashlib.sha1(filename.encode()).hexdigest(), 16) % 5 == 0


def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------- reader contract
def reader_preprocess(img_rgb):
    """PIL RGB crop -> float32 [1,32,128]: luma (0.299R+0.587G+0.114B), bilinear resize to 128x32
    (no aspect preservation), /255."""
    a = np.asarray(img_rgb.convert("RGB"), np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    g = Image.fromarray(a, "F").resize((128, 32), Image.BILINEAR)
    return (np.asarray(g, np.float32) / 255.0)[None]


def ctc_greedy(probs):
    """probs [T,37] -> (text, confidence). Greedy CTC: argmax per step, collapse repeats, drop blanks.
    char confidence = max prob over the steps that emitted it; plate confidence = product."""
    idx = probs.argmax(-1)
    text, confs = [], []
    prev = 0
    for t, k in enumerate(idx):
        p = float(probs[t, k])
        if k != 0:
            if k != prev:
                text.append(CHARS[k - 1])
                confs.append(p)
            else:
                confs[-1] = max(confs[-1], p)
        prev = k
    return "".join(text), float(np.prod(confs)) if confs else 0.0


def read_batch(reader, crops):
    if not crops:
        return []
    x = np.stack([reader_preprocess(c) for c in crops]).astype(np.float32)
    probs = reader.run(["probs"], {"image": x})[0]
    return [ctc_greedy(p) for p in probs]


# ----------------------------------------------------------------------------- detector contract
def letterbox(img_rgb, W, H):
    s = min(W / img_rgb.width, H / img_rgb.height)
    nw, nh = round(img_rgb.width * s), round(img_rgb.height * s)
    r = np.asarray(img_rgb.convert("RGB").resize((nw, nh), Image.BILINEAR), np.float32) / 255.0
    x = np.zeros((1, 3, H, W), np.float32)
    x[0, :, :nh, :nw] = r.transpose(2, 0, 1)
    return x, s


def iou(a, b):
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    u = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / u if u > 0 else 0.0


def detect(det, img_rgb, W=640, H=480, thr=0.3, max_det=8, nms_iou=0.3):
    """Returns [(score, (x0,y0,x1,y1))] in original-image pixels."""
    x, s = letterbox(img_rgb, W, H)
    hm, box = det.run(["heatmap", "box"], {"image": x})
    hm, box = hm[0, 0], box[0]
    h, w = hm.shape
    pad = np.pad(hm, 1, constant_values=-np.inf)
    mx = np.max(np.stack([pad[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]), 0)
    ys, xs = np.nonzero((hm >= thr) & (hm >= mx))
    cands = []
    for y, xx in zip(ys, xs):
        cx, cy = (xx + 0.5) * 4, (y + 0.5) * 4
        l, t, r, b = box[:, y, xx]
        cands.append((float(hm[y, xx]), (cx - l, cy - t, cx + r, cy + b)))
    cands.sort(key=lambda c: -c[0])
    keep = []
    for sc, bb in cands:
        if all(iou(bb, k[1]) < nms_iou for k in keep):
            keep.append((sc, bb))
        if len(keep) >= max_det:
            break
    return [(sc, tuple(v / s for v in bb)) for sc, bb in keep]


def expand_crop_box(bb, img_w, img_h, mx=0.10, my=0.15):
    """Detected box -> reader crop: +10% of width left/right, +15% of height top/bottom (or the
    given margins), clamped; integer pixel rectangle [x0,x1) x [y0,y1) with floor/ceil."""
    x0, y0, x1, y1 = bb
    w, h = x1 - x0, y1 - y0
    X0 = int(np.floor(max(0.0, x0 - mx * w)))
    Y0 = int(np.floor(max(0.0, y0 - my * h)))
    X1 = int(np.ceil(min(float(img_w), x1 + mx * w)))
    Y1 = int(np.ceil(min(float(img_h), y1 + my * h)))
    return X0, Y0, max(X1, X0 + 1), max(Y1, Y0 + 1)


# ----------------------------------------------------------------------------- evaluation
def eval_crops(reader, data_dir):
    rows = list(csv.DictReader(open(os.path.join(data_dir, "crops", "labels.csv"))))
    res = {"val": [0, 0], "all": [0, 0]}
    for i in range(0, len(rows), 64):
        chunk = rows[i:i + 64]
        imgs = [Image.open(os.path.join(data_dir, "crops", r["file"])).convert("RGB") for r in chunk]
        for r, (t, _) in zip(chunk, read_batch(reader, imgs)):
            ok = t == r["plate"]
            for k in (["val", "all"] if is_val(r["file"]) else ["all"]):
                res[k][0] += ok
                res[k][1] += 1
    return res


def read_plates(reader, img, dets, margins):
    """Each detection read from every margin (one batch); per plate the most confident read."""
    crops = [img.crop(expand_crop_box(bb, img.width, img.height, *m)) for _, bb in dets for m in margins]
    reads = read_batch(reader, crops)
    k = len(margins)
    return [max(reads[i * k:(i + 1) * k], key=lambda r: r[1]) for i in range(len(dets))]


def eval_scenes(det, reader, scene_dir, W, H, thr, split=True, verbose=False, margins=((0.10, 0.15),)):
    rows = list(csv.DictReader(open(os.path.join(scene_dir, "labels.csv"))))
    keys = lambda f: (["val", "all"] if is_val(f) else ["all"]) if split else ["all"]
    res = {k: {"n": 0, "ok": 0, "det": 0, "ndet": 0} for k in ("val", "all")}
    det_t = []
    for r in rows:
        img = Image.open(os.path.join(scene_dir, r["file"])).convert("RGB")
        gt = (int(r["x"]), int(r["y"]), int(r["x"]) + int(r["w"]), int(r["y"]) + int(r["h"]))
        t0 = time.perf_counter()
        dets = detect(det, img, W, H, thr)
        det_t.append(time.perf_counter() - t0)
        found = any(iou(bb, gt) >= 0.3 for _, bb in dets)
        reads = read_plates(reader, img, dets, margins)
        ok = any(t == r["plate"] for t, _ in reads)
        if verbose and not ok:
            print(f"  miss {r['file']} label {r['plate']} found={found} reads={[t for t, _ in reads]}")
        for k in keys(r["file"]):
            res[k]["n"] += 1
            res[k]["ok"] += ok
            res[k]["det"] += found
            res[k]["ndet"] += len(dets)
    return res, det_t


def latency(sess, feed, n=30):
    for _ in range(3):
        sess.run(None, feed)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, feed)
        ts.append(time.perf_counter() - t0)
    return 1000 * float(np.median(ts))


def pct(a, b):
    return f"{100.0 * a / max(1, b):5.1f}% ({a}/{b})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=HERE)
    ap.add_argument("--data", default=os.environ.get("PLATES_DIR", "/work/shared/data/plates"))
    ap.add_argument("--scenes-dir", default=None, help="evaluate only this scene folder (no split)")
    ap.add_argument("--size", default="480x640", help="detector input HxW")
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--crop-margins", default="0.10,0.15",
                    help="x,y margins separated by ';' (the product reads 0.10,0.15;0.0,0.05;0.22,0.25)")
    args = ap.parse_args()
    margins = [tuple(float(v) for v in m.split(",")) for m in args.crop_margins.split(";")]
    H, W = (int(v) for v in args.size.split("x"))
    det = session(os.path.join(args.models, "detector.onnx"))
    reader = session(os.path.join(args.models, "reader.onnx"))
    print(f"detector input {H}x{W}, threshold {args.threshold}")
    if args.scenes_dir:
        res, _ = eval_scenes(det, reader, args.scenes_dir, W, H, args.threshold, split=False,
                             verbose=args.verbose, margins=margins)
        r = res["all"]
        print(f"{args.scenes_dir}: end-to-end exact {pct(r['ok'], r['n'])}  detection recall "
              f"{pct(r['det'], r['n'])}  detections/image {r['ndet'] / max(1, r['n']):.2f}")
        return
    c = eval_crops(reader, args.data)
    s, det_t = eval_scenes(det, reader, os.path.join(args.data, "scenes"), W, H, args.threshold,
                           verbose=args.verbose, margins=margins)
    for k, name in (("val", "VALIDATION split"), ("all", "FULL set (includes training images)")):
        print(f"[{name}]")
        print(f"  crops  exact plate accuracy : {pct(*c[k])}")
        print(f"  scenes end-to-end exact     : {pct(s[k]['ok'], s[k]['n'])}")
        print(f"  scenes detection recall@0.3 : {pct(s[k]['det'], s[k]['n'])}"
              f"   detections/image {s[k]['ndet'] / max(1, s[k]['n']):.2f}")
    if args.latency:
        x = np.random.rand(1, 3, H, W).astype(np.float32)
        print(f"latency (onnxruntime, 1 thread, median): detector {H}x{W} {latency(det, {'image': x}):.1f} ms, "
              f"reader N=1 {latency(reader, {'image': np.random.rand(1, 1, 32, 128).astype(np.float32)}):.2f} ms")


if __name__ == "__main__":
    main()
