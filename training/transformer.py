"""Fine-tuning the encoder with both heads through the Hugging Face Trainer.

The Trainer gives GPU use, data-parallel training under `torchrun`/`accelerate launch`,
length grouping, early stopping and the progress bar.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from sklearn.utils.class_weight import compute_class_weight
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging as hf_logging

from eval.metrics import intent_metrics, urgency_metrics
from model import read_metadata
from model.backends import load_backend
from model.calibration import softmax
from model.network import DISTILL_T, TriageHeads, TriageModel, load_network, urgency_probs
from model.predictor import urgency_level

from .args import TrainArgs


def load_start(args: TrainArgs, labels: list[str]) -> TriageHeads:
    """The base encoder with fresh heads, or an earlier model whose label rows are carried over."""
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    if args.init_from is None:
        config = AutoConfig.from_pretrained(args.base_model, num_labels=len(labels), id2label=id2label,
                                            label2id=label2id)
        config.urgency_levels = 4
        return load_network(args.base_model, config=config)
    old = load_network(args.init_from)
    old_labels = [old.config.id2label[i] for i in range(old.config.num_labels)]
    if old_labels == labels:
        return old
    model = load_network(args.init_from, num_labels=len(labels), id2label=id2label, label2id=label2id,
                         ignore_mismatched_sizes=True)
    with torch.no_grad():
        for i, label in enumerate(labels):
            if label in old_labels:
                j = old_labels.index(label)
                model.classifier.weight[i] = old.classifier.weight[j]
                model.classifier.bias[i] = old.classifier.bias[j]
    print(f"init from {args.init_from}: kept {len(set(labels) & set(old_labels))} intent rows, "
          f"new: {sorted(set(labels) - set(old_labels)) or 'none'}")
    return model


def keep_layers(model: TriageHeads, n: int) -> None:
    """Keep `n` of the encoder's layers, evenly spaced and ending with the top one (a smaller student)."""
    layers = model.base_model.encoder.layer
    if n > len(layers):
        raise ValueError(f"layers: the starting model has {len(layers)} layers, cannot keep {n}")
    keep = [round((i + 1) * len(layers) / n) - 1 for i in range(n)]
    model.base_model.encoder.layer = torch.nn.ModuleList(layers[i] for i in keep)
    model.config.num_hidden_layers = n
    print(f"student: encoder layers {keep} of {len(layers)}")


def freeze(model: TriageHeads, n: int) -> None:
    """Keep the embeddings and the lowest `n` encoder layers at their starting weights."""
    layers = model.base_model.encoder.layer
    if n > len(layers):
        raise ValueError(f"freeze_layers: the model has {len(layers)} encoder layers, cannot freeze {n}")
    for module in [model.base_model.embeddings, *layers[:n]]:
        module.requires_grad_(False)
    print(f"frozen: the embeddings and {n} of {len(layers)} encoder layers")


def mix_start(model: TriageHeads, start: dict[str, torch.Tensor], share: float) -> None:
    """Move the trained encoder back toward its starting weights: (1 - share) * trained + share * start.

    Weight-space ensembling (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022): the starting
    encoder has read far more kinds of text than our written posts, and a share of it back made the default
    model better on real tweets it never saw (docs/results.md, session 11). The heads stay as trained.
    """
    with torch.no_grad():
        for name, param in model.base_model.named_parameters():
            if name in start:  # frozen weights are not in it: they stay exactly as they started
                param.mul_(1 - share).add_(start[name].to(param.device), alpha=share)
    print(f"encoder: {share:.0%} of the starting weights mixed back in")


def teacher_targets(teachers: list[str], labels: list[str], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The teachers' mean intent probabilities (softened by DISTILL_T) and mean P(level > k) per post.

    A teacher is a model folder, scored here, or a file of its targets written by `python -m training teach`.
    """
    probs, above = [], []
    for path in teachers:
        p, a = read_targets(path, labels, texts) if Path(path).is_file() else model_targets(path, labels, texts)
        probs.append(p)
        above.append(a)
        print(f"teacher {path}: soft targets for {len(texts)} posts")
    return np.mean(probs, axis=0), np.clip(np.mean(above, axis=0), 0, 1)


def model_targets(path: str, labels: list[str], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm

    meta = read_metadata(path)
    if meta["backend"] != "torch":  # a baseline's log-probabilities and flat urgency are no teacher
        raise ValueError(f"teacher {path} is a {meta['backend']} model; teachers are transformer models")
    if meta["labels"] != labels:
        raise ValueError(f"teacher {path} has intents {meta['labels']}, the data has {labels}")
    backend = load_backend("torch", Path(path))
    logits, levels = [], []
    with tqdm(total=len(texts), desc=f"teacher {Path(path).name}", unit="post") as bar:
        for start in range(0, len(texts), 1024):
            chunk = texts[start:start + 1024]
            out = backend(chunk)
            logits.append(out[0])
            levels.append(out[1])
            bar.update(len(chunk))
    levels = np.concatenate(levels)
    return softmax(np.concatenate(logits), DISTILL_T), 1 - np.cumsum(levels, axis=1)[:, :-1]


def write_targets(teachers: list[str], texts: list[str], out: Path) -> pd.DataFrame:
    """The teachers' soft targets for `texts` as a file that `train --teacher FILE` reads."""
    metas = [read_metadata(t) for t in teachers]  # every folder checked before any is scored
    labels = metas[0]["labels"]
    probs, above = teacher_targets(teachers, labels, texts)
    frame = pd.DataFrame({"text": texts, **{f"p_{label}": probs[:, i] for i, label in enumerate(labels)},
                          **{f"above_{k}": above[:, k] for k in range(above.shape[1])}})
    frame.attrs = {"temperature": DISTILL_T, "teachers": [m["version"] for m in metas]}
    frame.to_parquet(out, index=False)
    return frame


def read_targets(path: str, labels: list[str], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_parquet(path)
    names = [f"p_{label}" for label in labels]
    held = [c[2:] for c in frame.columns if c.startswith("p_")]
    if held != labels:
        raise ValueError(f"teacher {path} has intents {held}, the data has {labels}")
    if frame.attrs.get("temperature") != DISTILL_T:
        raise ValueError(f"teacher {path} was softened at temperature {frame.attrs.get('temperature')}, "
                         f"training uses {DISTILL_T}; write it again with `python -m training teach`")
    frame = frame.drop_duplicates("text").set_index("text")
    missing = [t for t in texts if t not in frame.index]
    if missing:
        raise ValueError(f"teacher {path} has no targets for {len(missing)} of {len(texts)} training posts "
                         f"(e.g. {missing[0][:60]!r}); write it again with `python -m training teach`")
    rows = frame.loc[texts]
    return rows[names].to_numpy(), rows[[c for c in frame.columns if c.startswith("above_")]].to_numpy()


def init_urgency_thresholds(model: TriageHeads, urgency: np.ndarray) -> None:
    """Start each threshold at the logit of the training share above it.

    Adam moves a parameter by about the learning rate per step, so thresholds left at a generic start
    would barely move in a short fine-tuning; starting from the data's cumulative rates fixes that.
    """
    known = urgency[urgency >= 0]
    if len(known) == 0:
        return
    above = np.array([(known > k).mean() for k in range(model.urgency_levels - 1)]).clip(0.01, 0.99)
    with torch.no_grad():
        model.urgency_bias.copy_(torch.tensor(np.log(above / (1 - above)), dtype=torch.float32))


def head_optimizer(model: TriageHeads, args: TrainArgs) -> torch.optim.Optimizer:
    """AdamW with a larger learning rate for the freshly initialised heads than for the encoder."""
    heads, decay, no_decay = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(("classifier", "urgency_")):
            heads.append(param)
        elif param.ndim < 2 or "LayerNorm" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    return torch.optim.AdamW([
        {"params": decay, "lr": args.learning_rate, "weight_decay": 0.01},
        {"params": no_decay, "lr": args.learning_rate, "weight_decay": 0.0},
        {"params": heads, "lr": args.head_learning_rate, "weight_decay": 0.0},
    ])


def training_precision(precision: str) -> str:
    """`auto`: bf16 mixed precision on a GPU that has it, else fp32.

    Not bf16 on CPUs, even where it is fast: on a Xeon with AMX the default model trained in 423-537 s in
    bf16 against 691-729 s in fp32, and scored 0.628 intent macro-F1 on the real dev tweets over three seeds
    against 0.665 in fp32 (the same seeds). fp32 also gives the same model on every CPU measured, where bf16
    seed 42 scored 0.675 on one CPU and 0.604, losing two behaviour tests, on another (docs/results.md).
    """
    if precision != "auto":
        return precision
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def fit_transformer(args: TrainArgs, labels: list[str], train_df: pd.DataFrame, val_df: pd.DataFrame,
                    out: Path) -> None:
    """Train into `out` (weights, tokenizer, config). `args.precision` is resolved to what was used."""
    args.precision = training_precision(args.precision)
    print(f"training in {args.precision}")
    set_seed(args.seed)
    hf_logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(args.init_from or args.base_model)
    model = load_start(args, labels)
    if args.layers:
        keep_layers(model, args.layers)
    if args.freeze_layers is not None:
        freeze(model, args.freeze_layers)
    start = ({name: param.detach().clone() for name, param in model.base_model.named_parameters()
              if param.requires_grad} if args.pretrained_share else None)
    weights = compute_class_weight("balanced", classes=np.arange(len(labels)), y=train_df["label"].to_numpy())
    weights = {"balanced": weights, "sqrt": np.sqrt(weights), "none": np.ones_like(weights)}[args.class_weights]
    model.class_weights = torch.tensor(weights, dtype=torch.float32)
    model.urgency_weight = args.urgency_weight
    model.distill_weight = args.distill_weight
    if args.init_from is None:
        init_urgency_thresholds(model, train_df["urgency_id"].to_numpy())

    def to_dataset(frame: pd.DataFrame, teachers: list[str] = ()) -> Dataset:
        columns = {"text": frame["text"].tolist(), "labels": frame["label"].tolist(),
                   "urgency": frame["urgency_id"].tolist()}
        if teachers:
            probs, above = teacher_targets(teachers, labels, columns["text"])
            columns |= {"teacher_probs": probs.tolist(), "teacher_urgency": above.tolist()}
        ds = Dataset.from_dict(columns)
        return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length),
                      batched=True, remove_columns=["text"])

    train_ds, val_ds = to_dataset(train_df, args.teachers), to_dataset(val_df)

    def compute_metrics(ev):
        logits, cumulative = ev.predictions
        y, urgency = ev.label_ids
        pred = logits.argmax(-1)
        intent = intent_metrics([labels[i] for i in y], [labels[i] for i in pred], labels)
        levels = urgency_level(urgency_probs(torch.as_tensor(cumulative)).numpy())
        known = urgency >= 0
        urg = urgency_metrics(urgency[known], levels[known]) if known.any() else {}
        return {"macro_f1": intent["macro_f1"], "accuracy": intent["accuracy"],
                "urgency_qwk": urg.get("qwk", 0.0)}

    targs = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128,
        learning_rate=args.learning_rate,
        warmup_steps=0.06,
        weight_decay=0.01,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        train_sampling_strategy="group_by_length",
        label_names=["labels", "urgency"],
        logging_steps=20,
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=args.precision == "bf16",
        use_cpu=args.precision == "bf16" and not torch.cuda.is_available(),  # the Trainer refuses bf16 otherwise
    )
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, eval_dataset=val_ds,
                      data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                      compute_metrics=compute_metrics, optimizers=(head_optimizer(model, args), None),
                      callbacks=[EarlyStoppingCallback(early_stopping_patience=args.patience)])
    trainer.train()
    if not trainer.is_world_process_zero():
        return
    if start is not None:
        mix_start(trainer.model, start, args.pretrained_share)
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if isinstance(model, TriageModel):
        # The pipeline loads a BERT folder as a plain sequence classifier and ignores the urgency head.
        config = json.loads((out / "config.json").read_text())
        config["architectures"] = ["BertForSequenceClassification"]
        (out / "config.json").write_text(json.dumps(config, indent=2))
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
