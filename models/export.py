"""Export trained checkpoints to ONNX (opset 17, TorchScript exporter) following the I/O contract.

python export.py reader .work/reader.pt reader.onnx [conv|lstm] [base|small]
python export.py detector .work/detector.pt detector.onnx
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch

import nets


def export_reader(ckpt, out, kind="conv", size="base"):
    m = nets.make_reader(kind, size)
    m.load_state_dict(torch.load(ckpt, map_location="cpu"))
    m.eval()
    x = torch.rand(2, 1, 32, 128)
    torch.onnx.export(m, x, out, input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "N"}, "probs": {0: "N"}}, opset_version=17, dynamo=False)
    s = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    for n in (1, 3):
        xn = torch.rand(n, 1, 32, 128)
        ref = m(xn).detach().numpy()
        got = s.run(["probs"], {"image": xn.numpy()})[0]
        assert got.shape == (n, 32, 37), got.shape
        assert np.abs(ref - got).max() < 1e-4, np.abs(ref - got).max()
    return m


def export_detector(ckpt, out):
    m = nets.Detector()
    m.load_state_dict(torch.load(ckpt, map_location="cpu"))
    m.eval()
    x = torch.rand(1, 3, 480, 640)
    torch.onnx.export(m, x, out, input_names=["image"], output_names=["heatmap", "box"],
                      dynamic_axes={"image": {2: "H", 3: "W"}, "heatmap": {2: "H4", 3: "W4"},
                                    "box": {2: "H4", 3: "W4"}}, opset_version=17, dynamo=False)
    s = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    for H, W in ((480, 640), (512, 768), (320, 320)):
        xn = torch.rand(1, 3, H, W)
        rh, rb = (t.detach().numpy() for t in m(xn))
        gh, gb = s.run(["heatmap", "box"], {"image": xn.numpy()})
        assert gh.shape == (1, 1, H // 4, W // 4) and gb.shape == (1, 4, H // 4, W // 4)
        assert np.abs(rh - gh).max() < 1e-4 and np.abs(rb - gb).max() / (np.abs(rb).max() + 1) < 1e-4
    return m


if __name__ == "__main__":
    kind, ckpt, out = sys.argv[1:4]
    if kind == "reader":
        m = export_reader(ckpt, out, *(sys.argv[4:6]))
    else:
        m = export_detector(ckpt, out)
    onnx.checker.check_model(onnx.load(out))
    print(f"exported {out}: {os.path.getsize(out) / 1e6:.2f} MB, "
          f"{sum(p.numel() for p in m.parameters())} params")
