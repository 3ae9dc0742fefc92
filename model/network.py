"""The network: a BERT encoder with an intent head and an ordinal urgency head.

It subclasses `BertForSequenceClassification`, so the saved folder loads in
`transformers.pipeline("text-classification")` (which ignores the urgency head).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertForSequenceClassification
from transformers.utils import ModelOutput


@dataclass
class TriageOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    urgency_logits: torch.Tensor | None = None


# Softening of the teachers' intent probabilities when a student learns from them (Hinton et al. 2015).
DISTILL_T = 2.0


class TriageModel(BertForSequenceClassification):
    """Intent logits and cumulative urgency logits from one forward pass.

    Urgency is ordinal (CORAL): one shared projection and K-1 ordered biases,
    `urgency_logits[:, k]` is the logit of P(level > k).
    """

    def __init__(self, config):
        super().__init__(config)
        self.urgency_levels = getattr(config, "urgency_levels", 4)
        self.urgency_head = nn.Linear(config.hidden_size, 1, bias=False)
        self.urgency_bias = nn.Parameter(torch.linspace(1.0, -1.0, self.urgency_levels - 1))
        # Set by the trainer only; not saved with the weights.
        self.register_buffer("class_weights", None, persistent=False)
        self.urgency_weight = 1.0
        self.distill_weight = 0.5
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        # Fresh ordered thresholds; from_pretrained calls this only for weights missing on disk.
        if isinstance(module, TriageModel):
            with torch.no_grad():
                module.urgency_bias.copy_(torch.linspace(1.0, -1.0, module.urgency_levels - 1))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                labels=None, urgency=None, teacher_probs=None, teacher_urgency=None, **kwargs):
        out = self.bert(input_ids, attention_mask=attention_mask,
                        token_type_ids=token_type_ids, return_dict=True)
        pooled = self.dropout(out.pooler_output)
        logits = self.classifier(pooled)
        urgency_logits = self.urgency_head(pooled) + self.urgency_bias
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels, weight=self.class_weights)
            if urgency is not None:
                known = urgency >= 0  # -1 marks rows without an urgency label
                if known.any():
                    steps = torch.arange(self.urgency_levels - 1, device=urgency.device)
                    target = (urgency[known, None] > steps).float()
                    loss = loss + self.urgency_weight * F.binary_cross_entropy_with_logits(
                        urgency_logits[known], target)
            if teacher_probs is not None:  # distillation: the teachers' intent and P(level > k)
                soft = F.kl_div(F.log_softmax(logits / DISTILL_T, -1), teacher_probs, reduction="batchmean")
                soft = soft * DISTILL_T**2 + self.urgency_weight * F.binary_cross_entropy_with_logits(
                    urgency_logits, teacher_urgency)
                loss = (1 - self.distill_weight) * loss + self.distill_weight * soft
        return TriageOutput(loss=loss, logits=logits, urgency_logits=urgency_logits)


def urgency_probs(cumulative_logits: torch.Tensor) -> torch.Tensor:
    """Level probabilities from cumulative logits P(level > k)."""
    above = torch.sigmoid(cumulative_logits)
    ones = torch.ones_like(above[:, :1])
    zeros = torch.zeros_like(above[:, :1])
    bounds = torch.cat([ones, above, zeros], dim=1)
    probs = (bounds[:, :-1] - bounds[:, 1:]).clamp_min(0)
    return probs / probs.sum(dim=1, keepdim=True)
