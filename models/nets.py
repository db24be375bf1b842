"""Network definitions for the reader (CRNN + CTC) and the detector (stride-4 centre net)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 37  # 0 = CTC blank, then 0-9, A-Z
CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def cbr(cin, cout, k=3, s=1, p=None, groups=1):
    if p is None:
        p = k // 2 if isinstance(k, int) else tuple(x // 2 for x in k)
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False, groups=groups),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Reader(nn.Module):
    """[N,1,32,128] -> [N,32,37] softmax probabilities (CNN with strided convs + BiLSTM)."""

    def __init__(self, c=(32, 64, 96, 128), hidden=96):
        super().__init__()
        c1, c2, c3, c4 = c
        self.cnn = nn.Sequential(
            cbr(1, c1, 3, 2),                 # 16x64
            cbr(c1, c2, 3, 2),                # 8x32
            cbr(c2, c3), cbr(c3, c3, 3, (2, 1)),   # 4x32
            cbr(c3, c4),
            cbr(c4, c4, (4, 1), 1, (0, 0)),   # 1x32
        )
        self.rnn = nn.LSTM(c4, hidden, num_layers=1, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden, NUM_CLASSES)
        self.drop = nn.Dropout(0.15)

    def logits(self, x):
        f = self.cnn(x).squeeze(2).permute(0, 2, 1)  # N,T,C
        f, _ = self.rnn(f)
        return self.fc(self.drop(f))

    def forward(self, x):
        return F.softmax(self.logits(x), dim=-1)


class DWBlock(nn.Module):
    def __init__(self, cin, cout, s=1):
        super().__init__()
        self.dw = cbr(cin, cin, 3, s, groups=cin)
        self.pw = cbr(cin, cout, 1)
        self.res = (s == 1 and cin == cout)

    def forward(self, x):
        y = self.pw(self.dw(x))
        return x + y if self.res else y


class Detector(nn.Module):
    """image [1,3,H,W] in [0,1] -> heatmap [1,1,H/4,W/4] (sigmoid), box [1,4,H/4,W/4] (ltrb px)."""

    def __init__(self, w=(16, 32, 48, 64, 96)):
        super().__init__()
        a, b, c, d, e = w
        self.stem = nn.Sequential(cbr(3, a, 4, 4, 0), DWBlock(a, b))             # /4
        self.s4 = DWBlock(b, b)
        self.s8 = nn.Sequential(DWBlock(b, c, 2), DWBlock(c, c), DWBlock(c, c))   # /8
        self.s16 = nn.Sequential(DWBlock(c, d, 2), DWBlock(d, d), DWBlock(d, d))  # /16
        self.s32 = nn.Sequential(DWBlock(d, e, 2), DWBlock(e, e), DWBlock(e, e))  # /32
        self.lat32 = cbr(e, c, 1)
        self.lat16 = cbr(d, c, 1)
        self.lat8 = cbr(c, c, 1)
        self.up = cbr(c, b, 1)
        self.fuse = nn.Sequential(DWBlock(b, b), DWBlock(b, b))
        self.head_hm = nn.Conv2d(b, 1, 1)
        self.head_box = nn.Conv2d(b, 4, 1)
        nn.init.constant_(self.head_hm.bias, -4.0)

    def raw(self, x):
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.lat32(f32)
        p = F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat16(f16)
        p = F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat8(f8)
        p = F.interpolate(self.up(p), scale_factor=2.0, mode="nearest") + f4
        p = self.fuse(p)
        return self.head_hm(p), self.head_box(p)

    def forward(self, x):
        hm, bx = self.raw(x)
        return torch.sigmoid(hm), torch.exp(torch.clamp(bx, -3.0, 6.0)) * 16.0


class ReaderConv(nn.Module):
    """Pure-convolution reader: [N,1,32,128] -> [N,32,37] softmax probabilities."""

    def __init__(self, c=(32, 64, 96, 128), ctx=160):
        super().__init__()
        c1, c2, c3, c4 = c
        self.cnn = nn.Sequential(
            cbr(1, c1, 3, 2),                 # 16x64
            cbr(c1, c2, 3, 2),                # 8x32
            cbr(c2, c3), cbr(c3, c3, 3, (2, 1)),   # 4x32
            cbr(c3, c4),
            cbr(c4, ctx, (4, 1), 1, (0, 0)),  # 1x32
        )
        self.seq = nn.Sequential(
            nn.Conv1d(ctx, ctx, 5, 1, 2, bias=False), nn.BatchNorm1d(ctx), nn.ReLU(inplace=True),
            nn.Conv1d(ctx, ctx, 5, 1, 2, bias=False), nn.BatchNorm1d(ctx), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(0.15)
        self.fc = nn.Conv1d(ctx, NUM_CLASSES, 1)

    def logits(self, x):
        f = self.cnn(x).squeeze(2)            # N,C,T
        f = f + self.seq(f)
        return self.fc(self.drop(f)).permute(0, 2, 1)  # N,T,C

    def forward(self, x):
        return F.softmax(self.logits(x), dim=-1)


def make_reader(kind="conv", size="base"):
    if kind == "lstm":
        return Reader(*{"base": ((32, 64, 96, 128), 96), "small": ((16, 32, 64, 96), 64)}[size])
    return ReaderConv(*{"base": ((32, 64, 96, 128), 160), "small": ((16, 32, 64, 96), 128)}[size])


def reader_from_onnx(path, calibration):
    """A ReaderConv ("base") whose eval-mode function equals `path`, an exported ReaderConv.

    The exporter folds every BatchNorm into its convolution. To train again, each BatchNorm is
    rebuilt from the folded weights: its running statistics are the per-channel mean and variance
    of the convolution's output on `calibration` ([N,1,32,128] float), and its scale and shift undo
    them, so the function is unchanged and training-mode batch statistics start where they should.
    """
    import onnx
    from onnx import numpy_helper

    g = onnx.load(path).graph
    init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    m = make_reader("conv", "base")
    pairs = [(s[0], s[1]) for s in m.cnn] + [(m.seq[0], m.seq[1]), (m.seq[3], m.seq[4])]
    if len(convs) != len(pairs) + 1:
        raise ValueError(f"{path}: {len(convs)} convolutions, expected {len(pairs) + 1}")
    with torch.no_grad():
        for (conv, bn), node in zip(pairs, convs):
            conv.weight.copy_(init[node.input[1]])
            bn.weight.fill_(1.0)
            bn.bias.copy_(init[node.input[2]])
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        m.fc.weight.copy_(init[convs[-1].input[1]])
        m.fc.bias.copy_(init[convs[-1].input[2]])
        m.eval()
        stats = {}
        hooks = [conv.register_forward_hook(
            lambda mod, inp, out, key=i: stats.__setitem__(key, out.transpose(0, 1).reshape(out.shape[1], -1)))
            for i, (conv, _) in enumerate(pairs)]
        m(calibration)
        for h in hooks:
            h.remove()
        for i, (_, bn) in enumerate(pairs):
            mu, var = stats[i].mean(1), stats[i].var(1, unbiased=False)
            bn.running_mean.copy_(mu)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.add_(mu)
    return m
