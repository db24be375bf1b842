"""Pre-render synthetic training data into models/.work/ (git-ignored) with fixed seeds.

  python gen_data.py reader N SEED OUT.npz     -> images uint8 [N,32,128], labels (str)
  python gen_data.py scenes N SEED OUT.pkl     -> list of (jpeg bytes, [(text,(x,y,w,h))...])
"""
import io
import pickle
import random
import sys
from multiprocessing import Pool

import numpy as np

import synth

CHUNK = 500


def _reader_chunk(args, easy=False):
    seed, n = args
    rng = random.Random(seed)
    imgs, labels = [], []
    for _ in range(n):
        im, t = (synth.render_easy_sample if easy else synth.render_reader_sample)(rng)
        imgs.append(im)
        labels.append(t)
    return np.stack(imgs), labels


SCENE_SIZES = [((640, 480), 5), ((640, 360), 3), ((640, 427), 1), ((360, 480), 1), ((480, 480), 1)]


def _easy_chunk(args):
    return _reader_chunk(args, easy=True)


def _scene_chunk(args):
    seed, n = args
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        (W, H) = synth._choice_w(rng, SCENE_SIZES)
        k = rng.random()
        n_pl = 1 if k < 0.8 else (2 if k < 0.95 else 0)
        img, items = synth.render_scene(rng, W, H, plate_w_range=(16, 180), n_plates=max(1, n_pl))
        if n_pl == 0:  # negative scene: paint over plates with car texture is complex; drop them
            img, _ = synth._scene_background(rng, W, H)
            items = []
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(60, 95))
        out.append((buf.getvalue(), items))
    return out


def main():
    kind, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    jobs = [(seed * 100003 + i, min(CHUNK, n - i * CHUNK)) for i in range((n + CHUNK - 1) // CHUNK)]
    with Pool(2) as pool:
        if kind in ("reader", "easy"):
            res = pool.map(_reader_chunk if kind == "reader" else _easy_chunk, jobs)
            imgs = np.concatenate([r[0] for r in res])
            labels = np.array(sum([r[1] for r in res], []))
            np.savez(out, images=imgs, labels=labels)
        else:
            res = pool.map(_scene_chunk, jobs)
            with open(out, "wb") as f:
                pickle.dump(sum(res, []), f)
    print("wrote", out, n)


if __name__ == "__main__":
    main()
