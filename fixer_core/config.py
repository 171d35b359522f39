"""Tunable thresholds of the label error finder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

ERROR_TYPES = ("general", "ambiguous", "false_negative")

# Below this mean probability on its own pixels the model barely predicts a
# class: its labels are checked weakly (``ClassStatistics.weakly_predicted``).
WEAKLY_PREDICTED_BELOW = 0.1


@dataclass(frozen=True)
class FinderConfig:
    """Thresholds of :class:`~fixer_core.LabelErrorFinder`.

    Every rule of the finder reads its numbers from here, so a run is fully
    described by its config (it is stored with each FiftyOne run).

    Args:
        min_confidence: a predicted class ``j`` counts as confident on a pixel
            when ``p_j >= min(t_j, min_confidence)``, where ``t_j`` is the
            class's confident-learning threshold (the mean ``p_j`` over pixels
            labelled ``j``). The cap keeps classes the model is always sure of
            from needing near-certain predictions.
        min_area: smallest patch, in pixels, that is reported.
        speck_radius: radius of the morphological opening that removes specks
            and one-pixel threads from pixel-level flags (0 disables it).
        boundary_width: a patch that touches a region labelled with its
            suggested class and is nowhere wider than twice this many pixels
            is a boundary sliver (label noise along the border between two
            regions) and is not reported (0 disables the rule).
        score_area_scale: area, in pixels, at which the size factor of a
            patch's score reaches one half.
        prior_strength: a model trained on the labels leans towards
            frequent classes. Before the argmax and the margin of a patch's
            score are taken, the probabilities are weighted by ``f **
            -prior_strength``, where ``f`` are the classes' pixel
            frequencies in the labels (logit adjustment): a suggestion of a
            more frequent class needs more evidence, one of a rarer class
            (a missed object) less. 1 removes the prior fully; 0 disables
            the correction (for models that do not carry the labels' prior,
            such as simulated ones).
        prior_edge_share: a suggestion won by the prior correction alone
            (raw ``p_s <= p_g``) is dropped when at least this share of the
            pixels just outside its patch are labelled with the suggested
            class: along the edge of such a region it is the model's blur.
        prior_max_background: the prior correction weighs a class at most
            this over its background level (its mean probability on pixels
            labelled otherwise): the model's noise for a rare class is
            never lifted above this level.
        margin_classes: a patch's margin is taken on its (prior-adjusted)
            probabilities renormalized over its this many most likely
            classes, so that a long tail of classes the model does not
            assert does not shrink every margin and score as classes are
            added. With at most this many classes it is the full softmax.
        min_score: patches scoring below this are not reported.
        min_error_probability: ... nor patches whose ``error_probability``
            is below this: the data shows their confusion as the model's
            own habit, or their given class as one the model barely sees
            (BENCHMARKS.md, "Native resolution").
        correct_min_probability: the corrected labels take the suggestions
            of the patches whose ``error_probability`` is at least this;
            the others are reported for review but not applied. Chosen on
            the train cells of BENCHMARKS.md so that the corrected labels
            gain the most on noisy labels and keep clean ones (0.994 mIoU
            with the third-party model).
        fn_max_frequency_ratio: a patch can be a false negative only when its
            suggested class holds at most this fraction of the pixels of its
            given class across the dataset; the mirror image (the given
            class much rarer than the suggested one) bounds a patch's
            ``error_probability`` by the share of the model's misses of
            the given class that label errors can explain
            (``ClassStatistics.miss_share``).
        fn_min_inside_share: ... and at least this share of the pixels just
            outside the patch carry the given class (the patch lies in or
            against a region of it; the model's blob of a missed object
            often reaches past it). Chosen on the train cells, leaving one
            model out (BENCHMARKS.md, "Every threshold's reason").
        ambiguous_min_rate: a class pair is confused in both directions when
            at least this fraction of the interior pixels of each class is
            confidently predicted as the other.
        ambiguous_min_given_prob: ... and a patch of that pair is ambiguous
            when the model still gives its given class at least this mean
            probability (the model itself is split). A pair that labels
            and model swap about equally both ways is ambiguous whatever
            these two (``ClassStatistics.swapped_evenly``).
        min_issue_patches: a recurring pattern becomes a specific issue when
            it holds at least this many patches ...
        min_issue_images: ... in at least this many images.
        blur_reference: the model blur (``ClassStatistics.blur``, the
            width in pixels of its unsure band along label boundaries) that
            the spatial thresholds ``min_area``, ``boundary_width`` and
            ``score_area_scale`` are given for. A blurrier model (an
            upsampled low-resolution one, a weak one) gets them grown by
            ``blur / blur_reference`` (the areas by its square); a sharper
            one keeps them. ``speck_radius`` stays: specks are pixel noise.
            0 keeps them all fixed.
        repeat_window: a patch repeats a disagreement when one of this
            many previous images (in input order) has a patch of the same
            classes at the same place: consecutive video frames. Repeats
            are shown after the runs' first patches (see
            ``fixer_core.repeats``); 0 links nothing.
    """

    min_confidence: float = 0.25
    min_area: int = 16
    speck_radius: int = 1
    boundary_width: int = 2
    score_area_scale: float = 32.0
    prior_strength: float = 1.0
    prior_edge_share: float = 0.2
    prior_max_background: float = 0.15
    margin_classes: int = 16
    min_score: float = 0.075
    min_error_probability: float = 0.02
    correct_min_probability: float = 0.7
    fn_max_frequency_ratio: float = 0.3
    fn_min_inside_share: float = 0.1
    ambiguous_min_rate: float = 0.015
    ambiguous_min_given_prob: float = 0.2
    min_issue_patches: int = 3
    min_issue_images: int = 3
    blur_reference: float = 2.0
    repeat_window: int = 1

    def __post_init__(self) -> None:
        for name in (
            "min_confidence",
            "min_score",
            "min_error_probability",
            "correct_min_probability",
            "prior_edge_share",
            "prior_max_background",
            "fn_min_inside_share",
            "ambiguous_min_rate",
            "ambiguous_min_given_prob",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in (
            "min_area",
            "speck_radius",
            "boundary_width",
            "min_issue_patches",
            "min_issue_images",
            "repeat_window",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"{name} must be a non-negative integer, got {value!r}"
                )
        if not isinstance(self.margin_classes, int) or self.margin_classes < 2:
            raise ValueError(
                "margin_classes must be an integer >= 2, got "
                f"{self.margin_classes!r}"
            )
        if self.score_area_scale <= 0:
            raise ValueError(
                "score_area_scale must be positive, got "
                f"{self.score_area_scale}"
            )
        if self.blur_reference < 0:
            raise ValueError(
                "blur_reference must be non-negative, got "
                f"{self.blur_reference}"
            )
        if self.prior_strength < 0:
            raise ValueError(
                "prior_strength must be non-negative, got "
                f"{self.prior_strength}"
            )
        if self.fn_max_frequency_ratio < 0:
            raise ValueError(
                "fn_max_frequency_ratio must be non-negative, got "
                f"{self.fn_max_frequency_ratio}"
            )

    def at_blur(self, blur: float) -> FinderConfig:
        """The config for a model whose blur is ``blur`` pixels: its
        spatial thresholds grown by ``blur / blur_reference`` when that is
        above one (see ``blur_reference``)."""
        if not self.blur_reference or blur <= self.blur_reference:
            return self
        scale = blur / self.blur_reference
        return replace(
            self,
            min_area=round(self.min_area * scale**2),
            boundary_width=round(self.boundary_width * scale),
            score_area_scale=self.score_area_scale * scale**2,
            blur_reference=0.0,
        )

    def to_dict(self) -> dict:
        """Returns the config as a JSON-serializable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FinderConfig:
        """Builds a config from a dict, ignoring keys that are not fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
