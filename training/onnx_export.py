"""Export a trained folder to ONNX: both heads in one graph, fp32 and int8."""

import json
from pathlib import Path

import torch

from model import META_FILE, read_metadata
from model.network import TriageModel


class _Heads(torch.nn.Module):
    """Intent logits and urgency level probabilities, as the torch backend returns them."""

    def __init__(self, model: TriageModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        from model.network import urgency_probs

        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.logits, urgency_probs(out.urgency_logits)


def export_onnx(folder: str | Path, quantize: bool = True, serve: tuple[str, str, float] | None = None) -> list[Path]:
    """Write model.onnx (fp32) and model.int8.onnx into the folder; returns the files written.

    `serve` = (backend, precision, cascade margin) is stored as the folder's default inference choice.
    """
    folder = Path(folder)
    meta = read_metadata(folder)
    if meta["backend"] != "torch":
        raise ValueError(f"{folder} holds a {meta['backend']} model; only transformer models export to ONNX")
    model = TriageModel.from_pretrained(folder).eval()
    example = {k: torch.ones(2, 16, dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}
    fp32 = folder / "model.onnx"
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(_Heads(model), tuple(example.values()), str(fp32), dynamo=False, opset_version=17,
                      input_names=list(example), output_names=["logits", "urgency_probs"],
                      dynamic_axes={**{k: axes for k in example}, "logits": {0: "batch"},
                                    "urgency_probs": {0: "batch"}})
    written = [fp32]
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = folder / "model.int8.onnx"
        import onnx

        # The heads stay fp32: they are tiny, and ORT's fused int8 MatMul cannot add the urgency thresholds.
        heads = [n.name for n in onnx.load(str(fp32)).graph.node
                 if "classifier" in n.name or "urgency" in n.name or "pooler" in n.name]
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=heads)
        written.append(int8)
    meta.setdefault("onnx", {})["files"] = [p.name for p in written]
    if serve:
        meta["inference"] = {"backend": serve[0], "precision": serve[1], "cascade_margin": serve[2]}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    for p in written:
        print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")
    return written
