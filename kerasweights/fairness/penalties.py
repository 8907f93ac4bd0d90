"""Fairness penalties: differentiable measures of how predictions differ
between groups, added to the training loss.

A penalty is called as ``penalty(groups, y_pred, y_true=None,
sample_weight=None)`` and returns a scalar tensor. ``groups`` holds one
integer group code per sample; ``y_pred`` holds one score per sample (a
probability, or a logit with ``from_logits=True``). Use it through
`kerasweights.fairness.FairnessModel`, which feeds it the named sensitive
input during plain ``model.fit``.

Reductions. Every penalty is built from weighted means over a set of
samples (a group, a group and label cell, or the batch). ``reduction``
chooses their denominator:

* ``"weighted_mean"`` (default): ``sum(w * v) / sum(w)``. Samples of weight
  zero do not count at all, so weights ``[0, 1]`` on values ``[5, 1]`` give
  1.0.
* ``"sum_over_batch_size"``: ``sum(w * v) / n``, with ``n`` the number of
  samples in the set, weighted or not; the Keras loss convention (0.5 in the
  example above).

A group with no sample, or only samples of weight zero, in the batch is
absent: its samples are treated as if they were not in the batch, under
both reductions (so with ``"sum_over_batch_size"`` they do not count in
``n`` either). Two-group penalties return 0 when either group is absent,
and the multi-group ones leave the absent group out of the comparison. No
penalty returns NaN for an absent group.

Group codes. ``groups`` must hold integer codes ``0 .. num_groups - 1``:
``0`` and ``1`` for the two-group penalties (MMD, adjusted MMD, absolute
correlation, Zafar), ``num_groups`` codes for the others. Any other value
(groups coded 1/2, a code of ``num_groups`` or more, a negative or
fractional code) raises `InvalidArgumentError` on NumPy or eager inputs
and fails a runtime assertion in a traced function; under XLA, where
assertions are compiled away, the penalty is NaN instead. It is never
silently 0. Recode other codings with
``np.unique(groups, return_inverse=True)[1]``.
"""

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.group_codes import group_codes
from kerasweights.fairness.group_codes import nan_unless

__all__ = [
    "FairnessPenalty",
    "MMDPenalty",
    "AdjustedMMDPenalty",
    "AbsoluteCorrelationPenalty",
    "DemographicParityPenalty",
    "EqualizedOddsPenalty",
    "ZafarCovariancePenalty",
    "PrejudiceIndexPenalty",
    "REDUCTIONS",
    "KERNELS",
]

REDUCTIONS = ("weighted_mean", "sum_over_batch_size")
KERNELS = ("gaussian", "laplacian")
_PROB_EPSILON = 1e-6


def _choice(name, value, options):
    if value not in options:
        raise InvalidArgumentError(
            f"`{name}` must be one of {list(options)}. Received: "
            f"{name}={value!r}"
        )
    return value


def _positive(name, value, allow_zero=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise InvalidArgumentError(
            f"`{name}` must be a {kind} number. Received: {name}={value!r}"
        )
    return float(value)


def _int_at_least(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(
            f"`{name}` must be an integer >= {minimum}. Received: "
            f"{name}={value!r}"
        )
    return value


def _safe_divide(numerator, denominator):
    """``numerator / denominator``, 0 where the denominator is 0."""
    nonzero = ops.not_equal(denominator, 0.0)
    safe = ops.where(nonzero, denominator, ops.ones_like(denominator))
    return ops.where(nonzero, numerator / safe, ops.zeros_like(numerator))


class FairnessPenalty:
    """Base class of the fairness penalties.

    A subclass implements ``compute(groups, scores, labels, weights)`` on
    flat float tensors (``scores`` are probabilities in ``[0, 1]``, or the
    raw logits when ``uses_logits`` is set) and builds its statistics with
    `weighted_mean` and `normalised_weights`, so that ``reduction`` and
    sample weights act the same way in every penalty. It sets
    ``needs_labels = True`` when it compares rates conditioned on the label,
    and the class attribute ``plugin_kind = "regularizer"``.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than
            probabilities.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"`` (see the
            module docstring).
        name: A name for logs.

    Raises:
        InvalidArgumentError: ``reduction`` is unknown.
    """

    needs_labels = False
    uses_logits = False
    counted = None

    @property
    def group_count(self):
        """How many group codes the penalty accepts (2, or num_groups)."""
        return getattr(self, "num_groups", 2)

    def __init__(self, from_logits=False, reduction="weighted_mean", name=None):
        self.from_logits = bool(from_logits)
        self.reduction = _choice("reduction", reduction, REDUCTIONS)
        self.name = name or type(self).__name__

    def __call__(self, groups, y_pred, y_true=None, sample_weight=None):
        """The penalty on one batch, a float32 scalar tensor.

        Args:
            groups: Integer group codes, shape ``(batch,)`` or
                ``(batch, 1)``.
            y_pred: One score per sample, same shape.
            y_true: Binary labels; required when ``needs_labels``.
            sample_weight: Optional non-negative weights, shape ``(batch,)``.

        Raises:
            InvalidArgumentError: Labels are needed but missing,
                ``y_pred`` has more than one score per sample, or a group
                code is not an integer in ``[0, group_count)``.
        """
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_pred.shape) > 1 and y_pred.shape[-1] not in (None, 1):
            raise InvalidArgumentError(
                f"`{self.name}` needs one score per sample. Received: y_pred "
                f"with shape {tuple(y_pred.shape)}"
            )
        scores = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        if self.uses_logits and not self.from_logits:
            clipped = ops.clip(scores, _PROB_EPSILON, 1.0 - _PROB_EPSILON)
            scores = ops.log(clipped) - ops.log(1.0 - clipped)
        elif self.from_logits and not self.uses_logits:
            scores = ops.sigmoid(scores)
        groups, valid = group_codes(groups, self.group_count, self.name)
        if y_true is None:
            if self.needs_labels:
                raise InvalidArgumentError(
                    f"`{self.name}` compares rates within each label and "
                    "needs `y_true`. Received: y_true=None"
                )
            labels = ops.zeros_like(scores)
        else:
            labels = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        if sample_weight is None:
            weights = ops.ones_like(scores)
        else:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            weights = weights * ops.ones_like(scores)
        # A group whose weights sum to 0 is absent: its samples do not
        # count, not even in the sample count of "sum_over_batch_size".
        one_hot = ops.one_hot(groups, self.group_count, dtype="float32")
        present = ops.cast(
            ops.sum(one_hot * weights[:, None], axis=0) > 0, "float32"
        )
        self.counted = ops.sum(one_hot * present[None, :], axis=1)
        try:
            value = self.compute(groups, scores, labels, weights)
        finally:
            self.counted = None
        return nan_unless(valid, value)

    def compute(self, groups, scores, labels, weights):
        """The penalty from flat tensors; implemented by subclasses."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement compute()"
        )

    def denominator(self, weights, mask):
        """The normaliser of a weighted mean over the samples in ``mask``.

        Under ``"sum_over_batch_size"`` it counts the samples of ``mask``
        whose group is present (``counted``, set while a call runs).
        """
        if self.reduction == "weighted_mean":
            return ops.sum(weights * mask)
        return ops.sum(self._counted(mask))

    def _counted(self, mask):
        if self.counted is None:
            return mask
        return mask * self.counted

    def normalised_weights(self, weights, mask):
        """Per-sample weights of the mean over ``mask`` (0 outside it)."""
        return _safe_divide(weights * mask, self.denominator(weights, mask))

    def weighted_mean(self, values, weights, mask):
        """The mean of ``values`` over ``mask`` under ``reduction``; 0 if
        the set is empty."""
        return ops.sum(self.normalised_weights(weights, mask) * values)

    def get_config(self):
        return {
            "from_logits": self.from_logits,
            "reduction": self.reduction,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _membership(groups):
    """1.0 for group code 1, 0.0 for code 0 (codes are checked before)."""
    return ops.cast(ops.equal(groups, 1), "float32")


def _kernel_matrix(scores, kernel, length):
    diff = scores[:, None] - scores[None, :]
    if kernel == "gaussian":
        return ops.exp(-ops.square(diff) / (length * length))
    return ops.exp(-ops.abs(diff) / length)


class _KernelPenalty(FairnessPenalty):
    """Shared code of the two MMD penalties."""

    def __init__(
        self,
        kernel="gaussian",
        kernel_length=0.1,
        from_logits=False,
        reduction="weighted_mean",
        name=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name
        )
        self.kernel = _choice("kernel", kernel, KERNELS)
        self.kernel_length = _positive("kernel_length", kernel_length)

    def _parts(self, groups, scores, weights):
        member = _membership(groups)
        a = self.normalised_weights(weights, member)
        b = self.normalised_weights(weights, 1.0 - member)
        k = _kernel_matrix(scores, self.kernel, self.kernel_length)
        aa = ops.sum(a[:, None] * a[None, :] * k)
        bb = ops.sum(b[:, None] * b[None, :] * k)
        ab = ops.sum(a[:, None] * b[None, :] * k)
        both = ops.logical_and(ops.sum(a) > 0, ops.sum(b) > 0)
        mmd = ops.where(both, aa + bb - 2.0 * ab, 0.0)
        return mmd, a, b, k, aa, bb, both

    def get_config(self):
        config = super().get_config()
        config["kernel"] = self.kernel
        config["kernel_length"] = self.kernel_length
        return config


@keras.saving.register_keras_serializable(package="kerasweights")
class MMDPenalty(_KernelPenalty):
    """Squared maximum mean discrepancy between the two groups' scores.

    ``MMD^2 = sum_ij a_i a_j k_ij + sum_ij b_i b_j k_ij
    - 2 sum_ij a_i b_j k_ij`` where ``a`` (``b``) are the normalised weights
    of group 1 (group 0) under ``reduction``, and the kernel is Gaussian,
    ``k_ij = exp(-(s_i - s_j)^2 / l^2)``, or Laplacian, ``exp(-|s_i - s_j|
    / l)``, with ``l = kernel_length``. Zero when the two score
    distributions match; 0 when either group is absent from the batch.

    Args:
        kernel: ``"gaussian"`` or ``"laplacian"``.
        kernel_length: The kernel length ``l`` (> 0).
        from_logits: Apply a sigmoid to ``y_pred`` first.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Example:
        >>> p = MMDPenalty()
        >>> round(float(p([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])), 5)
        1.36788

    Reference:
        Gretton et al., "A Kernel Two-Sample Test", JMLR 2012; Prost et al.,
        "Toward a better trade-off between performance and fairness with
        kernel-based distribution matching", 2019 (MinDiff).
    """

    plugin_kind = "regularizer"

    def compute(self, groups, scores, labels, weights):
        return self._parts(groups, scores, weights)[0]


@keras.saving.register_keras_serializable(package="kerasweights")
class AdjustedMMDPenalty(_KernelPenalty):
    """MMD^2 divided by the sampling variance of its two group means.

    With ``a~ = a / sum(a)`` the within-group weights, the kernel variance of
    group 1 is ``v_1 = sum_i a~_i k_ii - sum_ij a~_i a~_j k_ij`` and its
    effective size ``n_1 = 1 / sum_i a~_i^2`` (Kish); likewise for group 0.
    The penalty is ``MMD^2 / (stop_gradient(v_1 / n_1 + v_0 / n_0) + eps)``,
    so a gap between groups counts relative to how noisy the batch
    estimate of it is. 0 when either group is absent.

    Args:
        kernel: ``"gaussian"`` or ``"laplacian"``.
        kernel_length: The kernel length (> 0).
        epsilon: Added to the denominator (> 0).
        from_logits: Apply a sigmoid to ``y_pred`` first.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Reference:
        The adjusted MMD loss of TensorFlow Model Remediation (MinDiff);
        standard error of a weighted mean, Kish (1965).
    """

    plugin_kind = "regularizer"

    def __init__(
        self,
        kernel="gaussian",
        kernel_length=0.1,
        epsilon=0.01,
        from_logits=False,
        reduction="weighted_mean",
        name=None,
    ):
        super().__init__(
            kernel=kernel,
            kernel_length=kernel_length,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
        )
        self.epsilon = _positive("epsilon", epsilon)

    def compute(self, groups, scores, labels, weights):
        mmd, a, b, k, _, _, both = self._parts(groups, scores, weights)
        diag = ops.diagonal(k)
        variance = 0.0
        for w in (a, b):
            w = _safe_divide(w, ops.sum(w))
            spread = ops.sum(w * diag) - ops.sum(w[:, None] * w[None, :] * k)
            variance = variance + spread * ops.sum(ops.square(w))
        denominator = ops.stop_gradient(variance) + self.epsilon
        return ops.where(both, mmd / denominator, 0.0)

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config


@keras.saving.register_keras_serializable(package="kerasweights")
class AbsoluteCorrelationPenalty(FairnessPenalty):
    """Absolute weighted Pearson correlation of group membership and score.

    ``|cov(m, s)| / sqrt(var(m) var(s))`` with weighted means over the batch
    under ``reduction``, ``m`` the membership (1 for group 1), both
    variables centred on their weighted means ``sum(w x) / sum(w)``. The
    reduction scales the covariance and both variances alike, so it does
    not change the value. 0 when either variance is 0 (one group absent,
    or constant scores).

    Args:
        from_logits: Apply a sigmoid to ``y_pred`` first.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Reference:
        Beutel et al., "Putting Fairness Principles into Practice:
        Challenges, Metrics, and Improvements", AIES 2019.
    """

    plugin_kind = "regularizer"

    def compute(self, groups, scores, labels, weights):
        member = _membership(groups)
        everyone = ops.ones_like(scores)
        w = self.normalised_weights(weights, everyone)
        # Centre with the weighted means whatever the reduction: under
        # "sum_over_batch_size" the weights need not sum to 1, and a
        # constant membership must have zero variance.
        total = ops.sum(weights)
        mean_m = _safe_divide(ops.sum(weights * member), total)
        mean_s = _safe_divide(ops.sum(weights * scores), total)
        cov = ops.sum(w * (member - mean_m) * (scores - mean_s))
        var_m = ops.sum(w * ops.square(member - mean_m))
        var_s = ops.sum(w * ops.square(scores - mean_s))
        product = var_m * var_s
        positive = product > 0
        root = ops.sqrt(ops.where(positive, product, 1.0))
        return ops.where(positive, ops.abs(cov) / root, 0.0)


def _group_means(penalty, scores, weights, one_hot, cell):
    """Per-group weighted mean score over the samples in ``cell``."""
    masks = one_hot * cell[:, None]
    if penalty.reduction == "weighted_mean":
        den = ops.sum(masks * weights[:, None], axis=0)
    else:
        den = ops.sum(penalty._counted(cell)[:, None] * one_hot, axis=0)
    num = ops.sum(masks * (weights * scores)[:, None], axis=0)
    present = ops.sum(masks * weights[:, None], axis=0) > 0
    return _safe_divide(num, den), present


def _gap(means, present, overall, method):
    big = 1e9
    if method == "between_groups":
        high = ops.max(ops.where(present, means, -big))
        low = ops.min(ops.where(present, means, big))
        enough = ops.sum(ops.cast(present, "float32")) >= 2
        return ops.where(enough, high - low, 0.0)
    gaps = ops.where(present, ops.abs(means - overall), 0.0)
    return ops.max(gaps)


class _GapPenalty(FairnessPenalty):
    def __init__(
        self,
        num_groups=2,
        method="between_groups",
        from_logits=False,
        reduction="weighted_mean",
        name=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name
        )
        self.num_groups = _int_at_least("num_groups", num_groups, 2)
        self.method = _choice(
            "method", method, ("between_groups", "to_overall")
        )

    def _cell_gap(self, groups, scores, weights, cell):
        one_hot = ops.one_hot(groups, self.num_groups, dtype="float32")
        means, present = _group_means(self, scores, weights, one_hot, cell)
        overall = self.weighted_mean(scores, weights, cell)
        return _gap(means, present, overall, self.method)

    def get_config(self):
        config = super().get_config()
        config["num_groups"] = self.num_groups
        config["method"] = self.method
        return config


@keras.saving.register_keras_serializable(package="kerasweights")
class DemographicParityPenalty(_GapPenalty):
    """Soft demographic-parity gap: the spread of mean scores across groups.

    With ``m_g`` the weighted mean score of group ``g`` and ``m`` that of
    the batch: ``max_g m_g - min_g m_g`` (``method="between_groups"``) or
    ``max_g |m_g - m|`` (``"to_overall"``), over the groups present in the
    batch. It is the demographic parity difference with the hard decision
    replaced by the score, so it has a gradient. 0 with fewer than two
    groups present.

    Args:
        num_groups: Number of group codes (>= 2).
        method: ``"between_groups"`` or ``"to_overall"``.
        from_logits: Apply a sigmoid to ``y_pred`` first.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Reference:
        Calders, Kamiran and Pechenizkiy, "Building Classifiers with
        Independency Constraints", ICDM Workshops 2009; Madras et al.,
        "Learning Adversarially Fair and Transferable Representations",
        ICML 2018.
    """

    plugin_kind = "regularizer"

    def compute(self, groups, scores, labels, weights):
        everyone = ops.ones_like(scores)
        return self._cell_gap(groups, scores, weights, everyone)


@keras.saving.register_keras_serializable(package="kerasweights")
class EqualizedOddsPenalty(_GapPenalty):
    """Soft equalized-odds gap: the group spread of mean scores per label.

    The soft TPR gap is the `DemographicParityPenalty` gap over the samples
    with ``y = 1``, the soft FPR gap the same over ``y = 0``; they combine
    as their maximum (``agg="worst_case"``) or their mean (``"mean"``).

    Args:
        num_groups: Number of group codes (>= 2).
        method: ``"between_groups"`` or ``"to_overall"``.
        agg: ``"worst_case"`` or ``"mean"``.
        from_logits: Apply a sigmoid to ``y_pred`` first.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Reference:
        Hardt, Price and Srebro, "Equality of Opportunity in Supervised
        Learning", NeurIPS 2016.
    """

    plugin_kind = "regularizer"
    needs_labels = True

    def __init__(
        self,
        num_groups=2,
        method="between_groups",
        agg="worst_case",
        from_logits=False,
        reduction="weighted_mean",
        name=None,
    ):
        super().__init__(
            num_groups=num_groups,
            method=method,
            from_logits=from_logits,
            reduction=reduction,
            name=name,
        )
        self.agg = _choice("agg", agg, ("worst_case", "mean"))

    def compute(self, groups, scores, labels, weights):
        tpr_gap = self._cell_gap(groups, scores, weights, labels)
        fpr_gap = self._cell_gap(groups, scores, weights, 1.0 - labels)
        if self.agg == "worst_case":
            return ops.maximum(tpr_gap, fpr_gap)
        return (tpr_gap + fpr_gap) / 2.0

    def get_config(self):
        config = super().get_config()
        config["agg"] = self.agg
        return config


@keras.saving.register_keras_serializable(package="kerasweights")
class ZafarCovariancePenalty(FairnessPenalty):
    """Hinge on the covariance between membership and the decision value.

    ``max(0, |sum_i w_i (z_i - z_bar) d_i| - c)`` where ``z`` is the group
    membership, ``z_bar`` its weighted mean, ``d`` the signed decision
    value (the logit: probabilities are turned into logits, clipped to
    ``[1e-6, 1 - 1e-6]``), ``w`` the normalised weights under
    ``reduction`` and ``c = threshold``. Zafar et al. constrain this
    covariance to ``[-c, c]``; as a penalty, only the part outside the bound
    costs. 0 when one group is absent (``z - z_bar`` is then 0).

    Args:
        threshold: The covariance bound ``c`` (>= 0).
        from_logits: Whether ``y_pred`` already holds logits.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Reference:
        Zafar, Valera, Gomez Rodriguez and Gummadi, "Fairness Constraints:
        Mechanisms for Fair Classification", AISTATS 2017.
    """

    plugin_kind = "regularizer"
    uses_logits = True

    def __init__(
        self,
        threshold=0.0,
        from_logits=False,
        reduction="weighted_mean",
        name=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name
        )
        self.threshold = _positive("threshold", threshold, allow_zero=True)

    def compute(self, groups, scores, labels, weights):
        member = _membership(groups)
        everyone = ops.ones_like(scores)
        w = self.normalised_weights(weights, everyone)
        centred = member - _safe_divide(
            ops.sum(weights * member), ops.sum(weights)
        )
        cov = ops.sum(w * centred * scores)
        return ops.relu(ops.abs(cov) - self.threshold)

    def get_config(self):
        config = super().get_config()
        config["threshold"] = self.threshold
        return config


@keras.saving.register_keras_serializable(package="kerasweights")
class PrejudiceIndexPenalty(FairnessPenalty):
    """Kamishima's prejudice index: mutual information of label and group.

    ``PI = sum_i w_i sum_y p(y | x_i) log(p_hat(y | s_i) / p_hat(y))``
    where ``p(1 | x_i)`` is the score, ``p_hat(y | s)`` the weighted mean of
    ``p(y | x)`` over group ``s`` and ``p_hat(y)`` over the batch, ``w`` the
    normalised weights under ``reduction``. Probabilities are clipped to
    ``[1e-6, 1 - 1e-6]``. 0 when only one group is present.

    Args:
        num_groups: Number of group codes (>= 2).
        from_logits: Apply a sigmoid to ``y_pred`` first.
        reduction: ``"weighted_mean"`` or ``"sum_over_batch_size"``.
        name: A name for logs.

    Reference:
        Kamishima, Akaho, Asoh and Sakuma, "Fairness-Aware Classifier with
        Prejudice Remover Regularizer", ECML PKDD 2012.
    """

    plugin_kind = "regularizer"

    def __init__(
        self,
        num_groups=2,
        from_logits=False,
        reduction="weighted_mean",
        name=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name
        )
        self.num_groups = _int_at_least("num_groups", num_groups, 2)

    def compute(self, groups, scores, labels, weights):
        p = ops.clip(scores, _PROB_EPSILON, 1.0 - _PROB_EPSILON)
        one_hot = ops.one_hot(groups, self.num_groups, dtype="float32")
        everyone = ops.ones_like(p)
        group_p, _ = _group_means(self, p, weights, one_hot, everyone)
        group_p = ops.clip(group_p, _PROB_EPSILON, 1.0 - _PROB_EPSILON)
        own = ops.sum(one_hot * group_p[None, :], axis=1)
        overall = self.weighted_mean(p, weights, everyone)
        overall = ops.clip(overall, _PROB_EPSILON, 1.0 - _PROB_EPSILON)
        per_sample = p * (ops.log(own) - ops.log(overall)) + (1.0 - p) * (
            ops.log(1.0 - own) - ops.log(1.0 - overall)
        )
        return self.weighted_mean(per_sample, weights, everyone)

    def get_config(self):
        config = super().get_config()
        config["num_groups"] = self.num_groups
        return config
