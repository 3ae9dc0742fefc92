"""The network: an encoder (BERT or MPNet) with an intent head and an ordinal urgency head.

The BERT model subclasses `BertForSequenceClassification`, so its folder loads in
`transformers.pipeline("text-classification")` (which ignores the urgency head). An MPNet folder loads
only here: the pipeline's MPNet classifier has another head.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, BertForSequenceClassification, MPNetModel, MPNetPreTrainedModel
from transformers.utils import ModelOutput


@dataclass
class TriageOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    urgency_logits: torch.Tensor | None = None


# Softening of the teachers' intent probabilities when a student learns from them (Hinton et al. 2015).
DISTILL_T = 2.0


class TriageHeads:
    """Intent logits and cumulative urgency logits from one forward pass, over the encoder's pooled vector.

    Urgency is ordinal (CORAL): one shared projection and K-1 ordered biases,
    `urgency_logits[:, k]` is the logit of P(level > k).
    """

    def add_heads(self, config):
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
        if isinstance(module, TriageHeads):
            with torch.no_grad():
                module.urgency_bias.copy_(torch.linspace(1.0, -1.0, module.urgency_levels - 1))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                labels=None, urgency=None, teacher_probs=None, teacher_urgency=None, **kwargs):
        pooled = self.dropout(self.pooled(input_ids, attention_mask, token_type_ids))
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


class TriageModel(TriageHeads, BertForSequenceClassification):
    """BERT (the default MiniLM): the heads read its [CLS] pooler."""

    def __init__(self, config):
        BertForSequenceClassification.__init__(self, config)
        self.add_heads(config)

    def pooled(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         return_dict=True).pooler_output


class MPNetTriageModel(TriageHeads, MPNetPreTrainedModel):
    """MPNet (all-mpnet-base-v2): the heads read its pooler (dense + tanh over <s>), as BERT's."""

    def __init__(self, config):
        MPNetPreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.mpnet = MPNetModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.add_heads(config)

    def pooled(self, input_ids, attention_mask, token_type_ids):
        return self.mpnet(input_ids, attention_mask=attention_mask, return_dict=True).pooler_output


NETWORKS = {"bert": TriageModel, "mpnet": MPNetTriageModel}


def network_class(path) -> type:
    """The network class for a folder's encoder; an error names the encoders supported."""
    model_type = AutoConfig.from_pretrained(path).model_type
    if model_type not in NETWORKS:
        raise ValueError(f"{path}: a {model_type} encoder; supported encoders: {', '.join(NETWORKS)}")
    return NETWORKS[model_type]


def load_network(path, **kwargs) -> TriageHeads:
    return network_class(path).from_pretrained(path, **kwargs)


def urgency_probs(cumulative_logits: torch.Tensor) -> torch.Tensor:
    """Level probabilities from cumulative logits P(level > k)."""
    above = torch.sigmoid(cumulative_logits)
    ones = torch.ones_like(above[:, :1])
    zeros = torch.zeros_like(above[:, :1])
    bounds = torch.cat([ones, above, zeros], dim=1)
    probs = (bounds[:, :-1] - bounds[:, 1:]).clamp_min(0)
    return probs / probs.sum(dim=1, keepdim=True)
