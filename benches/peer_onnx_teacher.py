#!/usr/bin/env python3
"""Export a SimCLR R1 model trained in PyTorch by the peer reference to ONNX, as a teacher
for `keys.teacher = "teacher.onnx"` (CRD from a model trained outside this tool).

The graph maps normalised images [n, 1, 28, 28] to the projection z [n, 128] in eval mode.

usage (the peer saves into an existing folder):
  mkdir -p runs/peer
  python benches/peer/simclr_r1_reference.py train --epochs 1 --save --out-dir runs/peer \
      --data-dir data
  python benches/peer_onnx_teacher.py runs/peer/model_fmnist_e1.pt runs/peer/teacher.onnx
  contrastive train --config configs/crd-fashion-mnist.toml \
      --set keys.teacher=runs/peer/teacher.onnx
"""
import sys

import torch

from peer_r1 import r1


class Keys(torch.nn.Module):
    """The model's projection z only (the peer's forward returns (h, z))."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[1]


def main():
    state, out = sys.argv[1], sys.argv[2]
    model = r1.SimCLR()
    model.load_state_dict(torch.load(state, map_location="cpu"))
    keys = Keys(model).eval()
    x = torch.zeros(2, 1, r1.IMG, r1.IMG)
    torch.onnx.export(keys, (x,), out, input_names=["x"], output_names=["z"],
                      dynamic_shapes=({0: torch.export.Dim("n")},), dynamo=True,
                      external_data=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
