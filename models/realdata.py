"""Access to the real development photos in /work/shared/data/plates (read-only, never copied into the
repository). Provides the deterministic train/validation split and cached grayscale plate regions
(cache files go to models/.work/, which is git-ignored)."""
import csv
import hashlib
import os
import pickle

import numpy as np
from PIL import Image

DATA = os.environ.get("PLATES_DIR", "/work/shared/data/plates")
WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".work")


def is_val(filename):
    return int(hashlib.sha1(filename.encode()).hexdigest(), 16) % 5 == 0


def scene_rows():
    with open(os.path.join(DATA, "scenes", "labels.csv")) as f:
        return [dict(file=r["file"], plate=r["plate"], box=(int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])))
                for r in csv.DictReader(f)]


def crop_rows():
    with open(os.path.join(DATA, "crops", "labels.csv")) as f:
        return [dict(file=r["file"], plate=r["plate"], state=r["state"]) for r in csv.DictReader(f)]


def luma_u8(img):
    a = np.asarray(img.convert("RGB"), np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def load_reader_cache():
    """TRAIN-split real reader material (cached):
    crops: list of (gray uint8 full crop, text)
    scene_regions: list of (gray uint8 region, (x,y,w,h) box inside region, text)."""
    path = os.path.join(WORK, "real_reader_train.pkl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    crops = []
    for r in crop_rows():
        if is_val(r["file"]):
            continue
        crops.append((luma_u8(Image.open(os.path.join(DATA, "crops", r["file"]))), r["plate"]))
    regions = []
    for r in scene_rows():
        if is_val(r["file"]):
            continue
        im = Image.open(os.path.join(DATA, "scenes", r["file"]))
        x, y, w, h = r["box"]
        l, t = max(0, int(x - 0.5 * w)), max(0, int(y - 0.6 * h))
        rr, b = min(im.width, int(x + 1.5 * w)), min(im.height, int(y + 1.6 * h))
        regions.append((luma_u8(im.crop((l, t, rr, b))), (x - l, y - t, w, h), r["plate"]))
    os.makedirs(WORK, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump((crops, regions), f)
    return crops, regions


def detector_boxes_for_train(det_onnx, cache=None):
    """Run a detector (eval_reference contract) on TRAIN scenes; for each scene, the detected boxes
    that overlap the labelled plate (IoU >= 0.3), as (x, y, w, h) in original pixels. Used to train
    the reader on realistic detector crops."""
    cache = cache or os.path.join(WORK, "detboxes_" + os.path.basename(det_onnx) + ".pkl")
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f)
    import eval_reference as E
    det = E.session(det_onnx)
    out = {}
    for r in scene_rows():
        if is_val(r["file"]):
            continue
        img = Image.open(os.path.join(DATA, "scenes", r["file"])).convert("RGB")
        x, y, w, h = r["box"]
        gt = (x, y, x + w, y + h)
        boxes = []
        for H, W in ((480, 640), (512, 768)):
            for _, b in E.detect(det, img, W, H, thr=0.15):
                if E.iou(b, gt) >= 0.3:
                    boxes.append((b[0], b[1], b[2] - b[0], b[3] - b[1]))
        out[r["file"]] = boxes
    with open(cache, "wb") as f:
        pickle.dump(out, f)
    return out
