"""The peer's R1 reference (../shared/peer/simclr_r1_reference.py) as a module, for the
PyTorch counterparts beside it: `from peer_r1 import r1, ROOT`."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "r1", os.path.join(ROOT, "..", "shared", "peer", "simclr_r1_reference.py"))
r1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(r1)
