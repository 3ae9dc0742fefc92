"""The ONNX export: fp32 gives the torch answers (through ONNX Runtime and OpenVINO); int8 is smoothed on the
posts given, and loads."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from transformers import AutoTokenizer

from model import META_FILE, Predictor
from model.network import TriageModel
from training.onnx_export import export_onnx, smooth

pytestmark = pytest.mark.slow

TEXTS = ["@SkyFly my bag is lost and nobody answers", "do you have the blue dress in size 10?", "thanks!!",
         "someone used my card at your store, I did not buy this", "new phone who dis"]


def test_smoothing_keeps_the_function(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = TriageModel.from_pretrained(tiny_model).eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        before = model(**enc)
    smooth(model, tokenizer, TEXTS * 4)
    with torch.inference_mode():
        after = model(**enc)
    assert any(type(m).__name__ == "_Smoothed" for m in model.modules())
    torch.testing.assert_close(after.logits, before.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after.urgency_logits, before.urgency_logits, atol=1e-4, rtol=1e-4)


def test_export_gives_the_torch_answers(tiny_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    written = export_onnx(folder, calibration=TEXTS * 4)
    assert [p.name for p in written] == ["model.onnx", "model.int8.onnx"]
    assert not [p for p in folder.iterdir() if p.is_dir()]  # the smoothed fp32 graph was temporary
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["onnx"]["int8_smoothing"] == {"alpha": 0.8, "posts": 20}
    # The smoothing reached the int8 graph (a Mul by 1/s before each encoder matmul), not the fp32 one.
    assert any(".inverse" in t.name for t in onnx.load(str(folder / "model.int8.onnx")).graph.initializer)
    assert not any(".inverse" in t.name for t in onnx.load(str(folder / "model.onnx")).graph.initializer)
    reference = Predictor.from_pretrained(folder, backend="torch", precision="fp32")
    exported = Predictor.from_pretrained(folder, backend="onnx", precision="fp32")
    np.testing.assert_allclose(exported.predict_proba(TEXTS)[0], reference.predict_proba(TEXTS)[0], atol=1e-4)
    openvino = Predictor.from_pretrained(folder, backend="openvino", precision="fp32", threads=1)
    assert openvino.backend_name == "openvino fp32"
    openvino.backend.warm_up(2)  # what the service runs before it serves
    np.testing.assert_allclose(openvino.predict_proba(TEXTS)[0], reference.predict_proba(TEXTS)[0], atol=1e-4)
    np.testing.assert_allclose(openvino.predict_proba(TEXTS)[1], reference.predict_proba(TEXTS)[1], atol=1e-4)
    int8 = Predictor.from_pretrained(folder, backend="onnx", precision="int8")
    assert int8.backend_name == "onnx int8" and len(int8.predict(TEXTS)) == len(TEXTS)
