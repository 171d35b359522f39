"""The label error finder: streaming two passes over batches."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from ._argmax import (
    certain_argmax,
    channel_argmax,
    max_at_pixels,
    weighted_max,
)
from ._checks import (
    ArrayLike,
    as_tensor,
    check_find_inputs,
    check_signatures,
    prepare_labels,
    prepare_pred_probs,
)
from ._pixels import labelled_pixels, pixel_means, pooled_means
from .config import ERROR_TYPES, FinderConfig
from .error_types import classify_error, much_rarer
from .evidence import evidence_from_probs
from .issues import (
    NEIGHBOURS,
    SHIFTED,
    IssueTally,
    SpecificIssue,
    issue_key,
    issue_lookup,
)
from .neighbours import (
    MAX_MOTION,
    MAX_VOUCHED,
    NEIGHBOURS_CAUSE,
    doubt_with_testimony,
    lies_between,
    likelihood_ratios,
    neighbour_labels,
    odd_one_out,
    relabelled_share,
    same_scene,
    same_view,
    vouched_for,
    vouched_where_moved,
)
from .patches import Patch, PatchGeometry, find_patch_geometry
from .regions import LabelRegions, label_regions
from .repeats import (
    ExpectedErrors,
    RepeatLinker,
    discount_runs,
    frame_probability,
    join_shards,
)
from .shift import SHIFTED_CAUSE, LabelShift, find_label_shift, search_step
from .statistics import (
    ClassStatistics,
    ClassStatisticsAccumulator,
    image_disagreement,
)

# The score's weight on the label's doubt: the geometric share of
# ``ClassStatistics.label_doubt`` in a patch's score, ``(1 - p_g) x size x
# doubt^DOUBT_IN_SCORE``. A weak model's doubt in a whole class it barely
# sees then ranks under a sharp disagreement (BENCHMARKS.md, "The label's
# doubt in the score").
DOUBT_IN_SCORE = 0.25

# Algorithm
# ---------
# Pass 1 (``update``) streams the dataset once and accumulates per-class
# statistics: pixel counts, confident-learning thresholds t_k (mean p_k over
# pixels labelled k), the confident joint of given vs predicted classes
# over region interiors, the (label, argmax, confidence) histogram behind
# the label-error rates, and the model's blur along label boundaries.
#
# Pass 2 (``find``) streams it again. The suggestion s for a pixel labelled
# g is the argmax among the confident classes (p_k >= min(t_k,
# min_confidence)); the pixel is flagged when s != g and g is unconfident
# (p_g < t_g) or s reaches its own threshold (p_s >= t_s, confident
# learning's rule). Whole connected regions of one label are scored too:
# when a region's mean probabilities confidently name another class and its
# given class is unconfident, the whole region is flagged with it, which is
# far less noisy than single pixels. Flags become patches (see
# ``find_patch_geometry``; its spatial thresholds grow with the model's
# blur), each scored by the model's doubt in the label, 1 - p_g of its
# pixels' probabilities pooled in the logs (``_pooled_probs``), times
# a size factor and the fourth root of the label's doubt and of its image's
# excess over the model's habit (below). Its
# error_probability is the size factor times the share
# of label errors the data shows for its confusion at its confidence
# (``ClassStatistics.error_rates``) and times the doubt the given class's
# probability casts on its label, compared with what the model gives that
# class on its own labels and on the suggested class's
# (``ClassStatistics.label_doubts``: a class the model barely tells from
# the suggested one keeps its labels); patches under
# ``min_error_probability`` are not reported. A reported patch's
# probability is then the size factor times the least of the share, the
# doubt (both read "is this label wrong" from the same pixels) and the
# share of its pair's disagreement in its image beyond the model's habit
# (``ClassStatistics.excess_share``: a habit shows in most images at a
# similar share, an error is an excess in a few) and, where the suggested
# class is much more frequent than the given one, the share of the
# model's misses of the given class that label errors can explain
# (``ClassStatistics.miss_share``: a model blind to a thin, rare class
# calls its correct labels the class around them). In an image without
# both neighbouring frames, that doubt is the geometric mean of the 1% one
# and the same read on a log scale below 1%
# (``ClassStatistics.fine_doubts``: an overconfident model's confident
# mistakes sit apart from the other class's pixels there, and nothing else
# checks them). In a sequence of frames,
# the pixels whose label both neighbouring frames repeat, in place or
# where the camera's steady motion moved the patch's surroundings, are
# vouched for: score and probability are scaled by the share of a patch
# that is not, and a patch mostly vouched for is dropped
# (``fixer_core.neighbours``).
# Where both neighbours agree against the label, their testimony raises the
# model's doubt in the score by Bayes' rule, with the likelihood ratio the
# image shows (how rarely the neighbours contradict the labels the model
# confirms); regions the neighbours contradict become patches of their own,
# whose class the neighbours name and whose probability their testimony raises
# too. Patches are typed (see ``classify_error``), and a label that agrees with
# the model, or else with its neighbouring frames, far better when moved is
# reported as shifted against its image (``find_label_shift``).
#
# A model trained on the labels leans towards frequent classes. With
# ``prior_strength`` > 0 the argmax and a region's margin are taken on
# probabilities weighted by the inverse class frequencies (logit
# adjustment): a rare object the model half sees can be suggested, a rare
# label the model overrides with a frequent class needs more evidence. A
# suggestion won by the weighting alone (raw p_s <= p_g) is dropped along
# the edge of a region of the suggested class, where it is the model's
# blur.
#
# ``summary`` groups recurring (given, suggested, type) patterns into named
# specific issues.


@dataclass(frozen=True)
class FinderSummary:
    """What a finished pass 2 found.

    Attributes:
        issues: specific issues, largest first.
        totals: ``{error_type: {"patches": n, "pixels": n}}``.
        num_images: images scored.
        num_pixels: scored pixels.
        issue_share: share of flagged pixels that lie in specific issues.
        weakly_predicted: ``{class name: the model's mean probability on
            its pixels}`` of the classes it barely predicts, whose labels
            are checked weakly (see ``ClassStatistics.weakly_predicted``).
        expected_errors: estimated number of the reported patches that are
            label errors (the sum of their ``error_probability``, a run of
            repeats' shared: see ``fixer_core.repeats.ExpectedErrors``),
            known before anyone reviews them.
        expected_errors_interval: its 95% interval from the patches'
            chance alone (the estimated rates are taken as exact).
        shifted_labels: ``{image index: shift}`` of the labels that agree
            with the model far better when moved (see
            ``find_label_shift``): misregistered labels, or labels drawn
            for another frame. Their patches carry the cause
            ``SHIFTED_CAUSE``.
        repeats: reported patches that repeat a disagreement of the
            previous image(s) (``Patch.repeat_of``): runs of video frames
            meet the reviewer once.
        vouched: disagreements left unreported because both neighbouring
            frames label most of them as their image does
            (``fixer_core.neighbours``): the model's habits, or errors
            repeated frame after frame (those are met where their
            sequence starts, ends or changes).
        framed: images scored between neighbouring frames of their
            scene (``fixer_core.neighbours``): none in a dataset of
            photos, where every flag rests on the model alone.
    """

    issues: list[SpecificIssue]
    totals: dict[str, dict[str, int]]
    num_images: int
    num_pixels: int
    issue_share: float
    weakly_predicted: dict[str, float] = dataclasses.field(
        default_factory=dict
    )
    expected_errors: float = 0.0
    expected_errors_interval: tuple[float, float] = (0.0, 0.0)
    shifted_labels: dict[int, LabelShift] = dataclasses.field(
        default_factory=dict
    )
    repeats: int = 0
    vouched: int = 0
    framed: int = 0

    def issue_of(self, patch: Patch) -> str | None:
        """Returns the name of the specific issue a patch belongs to."""
        return self.issue_named(
            patch.given_label,
            patch.suggested_label,
            patch.error_type,
            patch.cause,
        )

    def issue_named(
        self,
        given: int,
        suggested: int,
        error_type: str,
        cause: str | None = None,
    ) -> str | None:
        """The name of the specific issue of a patch with these classes,
        type and cause, if any."""
        key = issue_key(*_issue_pair(given, suggested, cause), error_type)
        return self._lookup.get(key)

    @functools.cached_property
    def _lookup(self) -> dict:
        return issue_lookup(self.issues)

    @property
    def flagged_pixels(self) -> int:
        """Pixels in all reported patches."""
        return sum(t["pixels"] for t in self.totals.values())

    def to_dict(self) -> dict:
        """Returns the summary as JSON-serializable data."""
        return {
            "issues": [i.to_dict() for i in self.issues],
            "totals": {t: self.totals.get(t, {}) for t in ERROR_TYPES},
            "num_images": self.num_images,
            "num_pixels": self.num_pixels,
            "flagged_pixels": self.flagged_pixels,
            "issue_share": self.issue_share,
            "weakly_predicted": self.weakly_predicted,
            "expected_errors": round(self.expected_errors, 1),
            "expected_errors_interval": [
                round(v, 1) for v in self.expected_errors_interval
            ],
            "shifted_labels": {
                str(i): s.to_dict() for i, s in self.shifted_labels.items()
            },
            "repeats": self.repeats,
            "vouched": self.vouched,
            "framed": self.framed,
        }


class LabelErrorFinder:
    """Finds label errors in a stream of batches, in two passes.

    N - number of images in a batch, K - number of classes, H, W - mask size.
    Channel ``k`` of the probabilities is the class whose mask value is
    ``k``; mask values without a channel and values in ``ignore_index`` are
    never scored or flagged. Memory is bounded by one batch: nothing of a
    batch is kept but its patches.

    Args:
        class_names: the K class names, in channel order.
        ignore_index: mask values that are never scored.
        logits: whether ``pred_probs`` are logits (softmaxed here) rather
            than probabilities (validated to be non-negative, summing to 1).
        config: the finder's thresholds.
        device: where to compute; ``None`` computes where the inputs live.

    Example:
        >>> from fixer_core.synthetic import make_scenes
        >>> scenes = make_scenes(8, seed=0)
        >>> finder = LabelErrorFinder(scenes.class_names, ignore_index=[255])
        >>> finder.update(scenes.labels, scenes.pred_probs)
        >>> patches = finder.find(scenes.labels, scenes.pred_probs)
        >>> len(patches)
        8
    """

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        ignore_index: Sequence[int] = (),
        logits: bool = False,
        config: FinderConfig | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(class_names) < 2:
            raise ValueError("at least two classes are needed")
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.ignore_index = tuple(int(i) for i in ignore_index)
        self.logits = logits
        self.config = config or FinderConfig()
        self.device = None if device is None else torch.device(device)
        self._accumulator: ClassStatisticsAccumulator | None = None
        self._statistics: ClassStatistics | None = None
        self._tally = IssueTally()
        self._num_scored = 0
        self._num_pixels = 0
        self._expected = ExpectedErrors()
        self._shifts: dict[int, LabelShift] = {}
        self._repeats = RepeatLinker(self.config.repeat_window)
        self._num_repeats = 0
        self._num_vouched = 0
        self._num_framed = 0
        # (image index, labels, signature) of the last image scored, for
        # its next
        self._previous: tuple[int, np.ndarray, np.ndarray | None] | None = None
        self._float32: Tensor | None = None

    # -- pass 1 -----------------------------------------------------------

    def update(self, labels: ArrayLike, pred_probs: ArrayLike) -> None:
        """Pass 1: adds ``(N, H, W)`` labels and ``(N, K, H, W)``
        probabilities to the class statistics."""
        if self._statistics is not None:
            raise RuntimeError(
                "statistics are final once find() has run; start a new "
                "finder for a new dataset"
            )
        labels, pred_probs = self._prepare(labels, pred_probs)
        if self._accumulator is None:
            self._accumulator = ClassStatisticsAccumulator(
                self.num_classes,
                boundary_width=self.config.boundary_width,
                min_confidence=self.config.min_confidence,
                device=labels.device,
            )
        self._accumulator.update(labels, pred_probs)

    def reduce_statistics(
        self, all_reduce: Callable[[Tensor], object]
    ) -> None:
        """Ends pass 1 over shards: sums the class statistics of this
        finder with those of the other processes' finders (one shard of
        the data each), with ``all_reduce`` (see
        ``ClassStatisticsAccumulator.reduce``). Every process calls it
        once, after its last ``update``."""
        if self._statistics is not None:
            raise RuntimeError("statistics are final once find() has run")
        if self._accumulator is None:  # an empty shard
            self._accumulator = ClassStatisticsAccumulator(
                self.num_classes,
                boundary_width=self.config.boundary_width,
                min_confidence=self.config.min_confidence,
                device=self.device or "cpu",
            )
        self._accumulator.reduce(all_reduce)

    @property
    def statistics(self) -> ClassStatistics:
        """The statistics of pass 1; reading them ends pass 1."""
        if self._statistics is None:
            if self._accumulator is None:
                raise RuntimeError("call update() on the data before find()")
            self._statistics = self._accumulator.compute()
        return self._statistics

    # -- pass 2 -----------------------------------------------------------

    def find(
        self,
        labels: ArrayLike,
        pred_probs: ArrayLike,
        *,
        image_indices: Sequence[int] | None = None,
        following: ArrayLike | None = None,
        preceding: ArrayLike | None = None,
        signatures: ArrayLike | None = None,
        following_signature: ArrayLike | None = None,
        preceding_signature: ArrayLike | None = None,
    ) -> list[list[Patch]]:
        """Pass 2: returns the typed patches of each image of a batch.

        A patch's run of repeats is known once every image is scored:
        ``fixer_core.discount_runs`` over all the patches, with
        :attr:`run_lengths`, then gives them their final scores (as
        ``find_label_errors`` does).

        Args:
            labels: ``(N, H, W)`` integer labels.
            pred_probs: ``(N, K, H, W)`` probabilities (or logits).
            image_indices: the images' indices, stored in each patch
                (default: a running count over all batches).
            following: ``(H, W)`` labels of the image after the batch, if
                any: with the previous batch's last image, the batch's
                first and last images get neighbours too (see
                ``fixer_core.neighbours``).
            preceding: ``(H, W)`` labels of the image before the batch,
                where this finder did not score it (the first image of a
                rank's shard).
            signatures: ``(N, D)`` the images' signatures
                (``fixer_core.neighbours.image_signature``; a row may be
                ``None`` where unknown): near-duplicate images are
                neighbouring frames even where their labels, full of
                errors, agree too little.
            following_signature, preceding_signature: ``(D,)`` those of
                the images after and before the batch.
        """
        stats = self.statistics
        labels, pred_probs = self._prepare(labels, pred_probs)
        n = labels.shape[0]
        config = self.spatial_config
        if image_indices is None:
            image_indices = range(self._num_scored, self._num_scored + n)
        elif len(image_indices) != n:
            raise ValueError(
                f"got {len(image_indices)} image_indices for {n} images"
            )
        check_signatures(signatures, n)
        thresholds = torch.as_tensor(stats.thresholds, device=labels.device)
        weights = class_weights(
            stats,
            config.prior_strength,
            config.prior_max_background,
        )
        on_device = None if weights is None else weights.to(labels.device)
        p_given = pred_probs.gather(1, labels.clamp(min=0)[:, None])[:, 0]
        suggested = _pixel_suggestions(
            labels,
            pred_probs,
            p_given,
            thresholds,
            config.min_confidence,
            on_device,
        )
        # Narrow integers make the per-image NumPy and OpenCV work faster.
        small_int = torch.int16 if self.num_classes < 2**15 else torch.int32
        labels_np = labels.to(small_int).cpu().numpy()
        regions = [label_regions(label) for label in labels_np]
        suggested, region_flagged = _apply_region_suggestions(
            suggested,
            pred_probs,
            p_given,
            regions,
            thresholds,
            config.min_confidence,
            on_device,
            min_margin=config.min_score,
            margin_classes=config.margin_classes,
        )
        suggested_np = suggested.to(small_int).cpu().numpy()
        region_flagged_np = region_flagged.cpu().numpy()

        geometry = [
            find_patch_geometry(
                labels_np[i],
                suggested_np[i],
                region_flagged_np[i],
                regions[i],
                config,
            )
            for i in range(n)
        ]
        pooled = _pooled_probs(pred_probs, [ids for ids, _ in geometry])
        habits = None
        if stats.habits is not None and stats.habits.any():
            habits = image_disagreement(
                labels, pred_probs, p_given, self.config.boundary_width
            )
        # the shift search reads the argmax on its grid only
        step = search_step(labels_np.shape[1:])
        argmax_np = channel_argmax(pred_probs[:, :, ::step, ::step])
        neighbours, views = self._neighbours(
            labels_np,
            image_indices,
            following,
            preceding,
            signatures,
            following_signature,
            preceding_signature,
        )
        out, offset = [], 0
        for i, (_, shapes) in enumerate(geometry):
            image_pooled = pooled[offset : offset + len(shapes)]
            offset += len(shapes)
            before, after = neighbours[i], neighbours[i + 2]
            common = None
            if (
                before is not None
                and after is not None
                and lies_between(*views[i : i + 3])
            ):
                common = neighbour_labels(
                    before,
                    labels_np[i],
                    after,
                    (-1,),
                    one_view=same_view(views[i], views[i + 2]),
                )
            # the three frames' labels, for what they vouch for where the
            # scene moved (``vouched_where_moved``)
            moved = None if common is None else (before, labels_np[i], after)
            vouched = odd = contradicted = ratios = None
            if common is not None:
                flagged = suggested_np[i] >= 0
                vouched = vouched_for(common, labels_np[i], flagged)
                odd = odd_one_out(common, labels_np[i])
            if odd is not None:
                contradicted = odd >= 0
                argmax = channel_argmax(pred_probs[i : i + 1])[0]
                ratios = likelihood_ratios(
                    contradicted,
                    argmax == labels_np[i],
                    labels_np[i],
                    self.num_classes,
                )
            previous = None
            if before is not None and same_scene(
                before,
                labels_np[i],
                one_view=same_view(views[i], views[i + 1]),
            ):
                previous = (before, labels_np[i])
            patches, unreported = self._make_patches(
                int(image_indices[i]),
                tuple(labels_np.shape[1:]),
                shapes,
                image_pooled,
                region_flagged_np[i],
                stats,
                weights,
                config,
                vouched=vouched,
                contradicted=contradicted,
                ratios=ratios,
                moved=moved,
                previous=previous,
                habits=None
                if habits is None
                else (habits[0][i], habits[1][i]),
            )
            if odd is not None:
                patches += self._odd_patches(
                    int(image_indices[i]),
                    odd,
                    patches,
                    labels_np[i],
                    regions[i],
                    pred_probs[i : i + 1],
                    stats,
                    weights,
                    config,
                    ratios,
                    moved,
                )
            shift = find_label_shift(labels_np[i], argmax_np[i])
            if shift is None and common is not None:
                # a model too weak to show the move: the neighbours may
                shift = find_label_shift(labels_np[i], common)
            if shift is not None:
                self._shifts[int(image_indices[i])] = shift
                patches = _with_shift_cause(patches, shift, labels_np[i])
            patches = self._repeats.link(
                int(image_indices[i]),
                patches,
                unreported,
                image_shape=labels_np[i].shape,
                motion=_camera_motion(previous),
            )
            self._expected.add(int(image_indices[i]), patches, self._repeats)
            for p in patches:
                self._tally.add(
                    p.image_index,
                    *_issue_pair(p.given_label, p.suggested_label, p.cause),
                    p.error_type,
                    p.area,
                )
            self._num_repeats += sum(p.repeat_of is not None for p in patches)
            self._num_vouched += len(unreported)
            self._num_framed += common is not None
            out.append(patches)
        self._num_scored += n
        self._num_pixels += int((labels >= 0).sum())
        return out

    def findings(self) -> dict:
        """Pass 2's running totals (picklable), for ``merge_findings`` of
        the finder that summarizes all shards."""
        return {
            "tally": self._tally,
            "num_scored": self._num_scored,
            "num_pixels": self._num_pixels,
            "expected": self._expected,
            "shifts": self._shifts,
            "repeats": self._num_repeats,
            "vouched": self._num_vouched,
            "framed": self._num_framed,
            "runs": self._repeats.shard_runs(),
        }

    def shift_of(self, image_index: int) -> LabelShift | None:
        """The shift found for an image's label in pass 2, if any."""
        return self._shifts.get(image_index)

    def merge_findings(self, findings: Iterable[dict]) -> None:
        """Adds the pass 2 totals of the next shards' finders (their
        ``findings()``, in image order, with image indices over the whole
        dataset; this finder's shard comes first), so that ``summary``
        and :attr:`run_lengths` cover every shard: runs of repeats that
        cross a shard's edge are joined (see
        ``fixer_core.repeats.join_shards``)."""
        findings = list(findings)
        joined = join_shards(
            [self._repeats.shard_runs(), *(o["runs"] for o in findings)]
        )
        for other in findings:
            self._tally.merge(other["tally"])
            self._num_scored += other["num_scored"]
            self._num_pixels += other["num_pixels"]
            self._expected.merge(other["expected"], joined)
            self._shifts.update(other["shifts"])
            self._num_repeats += other["repeats"]
            self._num_vouched += other["vouched"]
            self._num_framed += other["framed"]
        self._num_repeats += joined.repeats
        self._repeats.run_lengths = joined.run_lengths

    def summary(self) -> FinderSummary:
        """Groups the patches found so far into specific issues."""
        totals = self._tally.totals()
        issues = self._tally.issues(
            self.class_names,
            min_patches=self.config.min_issue_patches,
            min_images=self.config.min_issue_images,
        )
        flagged = sum(t["pixels"] for t in totals.values())
        in_issues = sum(i.num_pixels for i in issues)
        expected, variance = self._expected.estimate(self.run_lengths)
        return FinderSummary(
            issues=issues,
            totals=totals,
            num_images=self._num_scored,
            num_pixels=self._num_pixels,
            issue_share=in_issues / flagged if flagged else 0.0,
            weakly_predicted=self.weakly_predicted,
            expected_errors=expected,
            expected_errors_interval=_interval(expected, variance),
            shifted_labels=dict(sorted(self._shifts.items())),
            repeats=self._num_repeats,
            vouched=self._num_vouched,
            framed=self._num_framed,
        )

    @property
    def run_lengths(self) -> dict[tuple[int, int], int]:
        """The images each run of repeats spans (``Patch.run`` -> length;
        runs of one image are left out), its unreported patches included:
        ``fixer_core.discount_runs`` gives the runs' patches their final
        scores with it."""
        return self._repeats.run_lengths

    @property
    def spatial_config(self) -> FinderConfig:
        """The config with its spatial thresholds scaled to the model's
        blur, measured in pass 1 (see ``FinderConfig.blur_reference``)."""
        return self.config.at_blur(self.statistics.blur)

    @property
    def weakly_predicted(self) -> dict[str, float]:
        """``{class name: mean probability on its pixels}`` of the classes
        the model barely predicts; empty until pass 1 has ended."""
        stats = self._statistics
        if stats is None:
            return {}
        return {
            self.class_names[k]: round(float(stats.thresholds[k]), 4)
            for k in stats.weakly_predicted()
        }

    # -- helpers ----------------------------------------------------------

    def _neighbours(
        self,
        labels_np: np.ndarray,
        image_indices: Sequence[int],
        following: ArrayLike | None,
        preceding: ArrayLike | None,
        signatures: ArrayLike | None,
        following_signature: ArrayLike | None,
        preceding_signature: ArrayLike | None,
    ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """The batch's labels with the image before it (``preceding``, or
        the previous batch's last if consecutive) and after it
        (``following``) around them, ``None`` where unknown: image ``k``'s
        neighbours are items ``k`` and ``k + 2``; and the same list of
        the images' signatures."""
        own = (
            [_signature(s) for s in signatures]
            if signatures is not None
            else [None] * len(labels_np)
        )
        previous = self._previous
        if previous is not None and previous[0] == int(image_indices[0]) - 1:
            before, before_view = previous[1], previous[2]
        else:
            before = self._prepared_label(preceding)
            before_view = _signature(preceding_signature)
        after = self._prepared_label(following)
        self._previous = (int(image_indices[-1]), labels_np[-1], own[-1])
        views = [before_view, *own, _signature(following_signature)]
        return [before, *labels_np, after], views

    def _prepared_label(self, label: ArrayLike | None) -> np.ndarray | None:
        """One ``(H, W)`` label as the finder scores it (ignored values
        -1), on the CPU."""
        if label is None:
            return None
        return (
            prepare_labels(
                as_tensor(label)[None], self.num_classes, self.ignore_index
            )[0]
            .cpu()
            .numpy()
        )

    def _odd_patches(
        self,
        image_index: int,
        odd: np.ndarray,
        patches: list[Patch],
        label: np.ndarray,
        regions: LabelRegions,
        pred_probs: Tensor,
        stats: ClassStatistics,
        weights: Tensor | None,
        config: FinderConfig,
        ratios: np.ndarray,
        moved: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> list[Patch]:
        """Patches of the regions the neighbouring frames contradict,
        beyond those the model's patches hold: a region at least half
        inside them is theirs already. ``ratios``: the neighbours'
        likelihood ratios in this image; ``moved``: the three frames'
        labels (see ``_make_patches``)."""
        held = np.zeros(label.shape, dtype=bool)
        for p in patches:
            x, y, w, h = p.box
            held[y : y + h, x : x + w] |= p.mask
        n, comp = cv2.connectedComponents(
            (odd >= 0).view(np.uint8), connectivity=8
        )
        size = np.bincount(comp.ravel(), minlength=n)
        inside = np.bincount(comp[held], minlength=n)
        taken = 2 * inside >= size
        taken[0] = True
        odd = np.where(taken[comp] | held, -1, odd)
        ids, shapes = find_patch_geometry(
            label, odd, odd >= 0, regions, config
        )
        if not shapes:
            return []
        patches, _ = self._make_patches(
            image_index,
            label.shape,
            shapes,
            _pooled_probs(pred_probs, [ids]),
            odd >= 0,
            stats,
            weights,
            config,
            cause=NEIGHBOURS_CAUSE,
            contradicted=odd >= 0,
            ratios=ratios,
            moved=moved,
        )
        return patches

    def _prepare(
        self, labels: ArrayLike, pred_probs: ArrayLike
    ) -> tuple[Tensor, Tensor]:
        device = self.device
        if device is None and isinstance(pred_probs, Tensor):
            device = pred_probs.device
        labels = prepare_labels(
            labels, self.num_classes, self.ignore_index, device=device
        )
        pred_probs = prepare_pred_probs(
            self._as_float32(pred_probs, labels.device),
            labels,
            self.num_classes,
            logits=self.logits,
        )
        ignored = [i for i in self.ignore_index if 0 <= i < self.num_classes]
        if ignored:
            # An ignored value is never suggested: its channel's share goes
            # to the other classes.
            pred_probs = pred_probs.clone()
            pred_probs[:, ignored] = 0
            pred_probs /= pred_probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return labels, pred_probs

    def _as_float32(
        self, pred_probs: ArrayLike, device: torch.device
    ) -> ArrayLike:
        """float16 probabilities on the CPU as float32, in a buffer reused
        from batch to batch: a fresh batch-sized tensor costs more to
        allocate (page faults) than to fill. Nothing of a batch is kept
        past ``update`` or ``find``."""
        if not isinstance(pred_probs, np.ndarray | Tensor):
            return pred_probs  # prepare_pred_probs names the error
        probs = as_tensor(pred_probs)
        on_cpu = probs.device.type == device.type == "cpu"
        if probs.dtype != torch.float16 or not on_cpu:
            return pred_probs
        if self._float32 is None or self._float32.shape != probs.shape:
            self._float32 = torch.empty(probs.shape, dtype=torch.float32)
        return self._float32.copy_(probs)

    def _make_patches(
        self,
        image_index: int,
        image_shape: tuple[int, int],
        shapes: list[PatchGeometry],
        pooled: np.ndarray,
        region_flagged: np.ndarray,
        stats: ClassStatistics,
        weights: Tensor | None,
        config: FinderConfig,
        cause: str | None = None,
        vouched: np.ndarray | None = None,
        contradicted: np.ndarray | None = None,
        ratios: np.ndarray | None = None,
        previous: tuple[np.ndarray, np.ndarray] | None = None,
        habits: tuple[np.ndarray, np.ndarray] | None = None,
        moved: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[list[Patch], list[PatchGeometry]]:
        """The reported patches of one image's shapes, scored and typed,
        and the shapes that only the neighbouring frames keep from being
        reported (for their runs of repeats).

        ``vouched`` and ``contradicted`` are the ``(H, W)`` masks of the
        pixels whose label the neighbouring frames repeat, and of those
        whose label they agree against, if known (see
        ``fixer_core.neighbours``): on a patch's vouched part the label is
        not in doubt, on its contradicted part the model's doubt is raised
        by the neighbours' testimony, with their likelihood ``ratios``
        (per given class) in this image. ``moved`` holds the previous,
        this and the next image's labels, where the neighbours are views of
        one scene: a patch is also vouched for where they repeat its label
        once aligned on its surroundings (``vouched_where_moved``), and
        in place they then contradict no more than the rest. ``previous``
        is the previous image's label, where it is a view of the same
        scene, and this image's: the share of each patch it labels with
        the suggested class goes in the evidence (``relabelled``).
        ``habits`` are the image's ``(K,)`` interior pixels by label and
        ``(K, K)`` by (label, argmax) (see
        ``fixer_core.statistics.image_disagreement``), where the pairs have
        habits: a reported patch's probability takes the share of its
        pair's disagreement the image shows beyond them (``_calibrated``).
        Where a shape continues a run of repeats that began with a change
        of the label, the neighbouring frames repeat the label's mistake:
        they vouch for nothing (``RepeatLinker.continue_changes``)."""
        patches, unreported = [], []
        repeating = [False] * len(shapes)
        if vouched is not None:
            repeating = self._repeats.continue_changes(
                image_index, shapes, image_shape, _camera_motion(previous)
            )
        for shape, probs, repeats_change in zip(
            shapes, pooled, repeating, strict=True
        ):
            given_prob = float(probs[shape.given_label])
            suggested_prob = float(probs[shape.suggested_label])
            if (
                weights is not None
                and suggested_prob <= given_prob
                and shape.suggested_share >= config.prior_edge_share
            ):
                # Won by the prior correction alone next to a region of the
                # suggested class: the model's blur at that region's edge.
                continue
            size = shape.area / (shape.area + config.score_area_scale)
            # The label's doubt is the model's 1 - p_given made a
            # probability by the data, so it replaces it in the probability;
            # the score ranks by the model's doubt, tempered by the data's.
            doubt = stats.label_doubt(
                shape.given_label, shape.suggested_label, given_prob
            )
            # A model misses a rare class into the much more frequent
            # classes around it: there its testimony is worth no more than
            # the share of its misses that label errors can explain
            # (``ClassStatistics.miss_share``), in the score and the
            # probability alike.
            blind = (
                stats.miss_share(shape.given_label)
                if cause != NEIGHBOURS_CAUSE
                and much_rarer(
                    shape.given_label,
                    shape.suggested_label,
                    stats.pixel_counts,
                    config,
                )
                else 1.0
            )
            model_doubt = min(
                (1.0 - given_prob) * (doubt * blind) ** DOUBT_IN_SCORE, 1.0
            )
            score = model_doubt * size
            # The neighbouring frames, not the model's confusion rates,
            # name the class of a region they contradict.
            pair_share = (
                1.0
                if cause == NEIGHBOURS_CAUSE
                else stats.error_rate(
                    shape.given_label, shape.suggested_label, suggested_prob
                )
            )
            probability = size * pair_share * doubt
            if (
                score < config.min_score
                or probability < config.min_error_probability
            ):
                continue
            share_vouched = (
                None if vouched is None else _masked_share(vouched, shape)
            )
            in_place = share_vouched or 0.0
            if moved is not None and in_place <= MAX_VOUCHED:
                share_vouched = max(
                    in_place,
                    vouched_where_moved(
                        *moved, shape.box, shape.mask, in_place
                    ),
                )
            unvouched = (
                1.0
                if share_vouched is None or repeats_change
                else 1.0 - share_vouched
            )
            share_contradicted = (
                None
                if contradicted is None
                else _masked_share(contradicted, shape)
            )
            if share_contradicted:
                # In place, the neighbours may contradict what they vouch
                # for where it moved: the motion, not a testimony.
                share_contradicted = min(share_contradicted, unvouched)
                # The size factor grows with the model's blur; the
                # neighbours' testimony does not blur with the model: its
                # part takes the factor at the reference scale.
                area = shape.area
                sharp = area / (area + self.config.score_area_scale)
                parts = (
                    float(ratios[shape.given_label]),
                    (size, unvouched - share_contradicted),
                    (sharp, share_contradicted),
                )
                score = _testified(model_doubt, *parts)
            else:
                score *= unvouched
            if share_contradicted and cause == NEIGHBOURS_CAUSE:
                # The neighbours name this patch's class: their testimony
                # weighs in its probability as in its score.
                probability = _testified(doubt, *parts)
            else:
                probability *= unvouched
            if (
                unvouched < 1.0 - MAX_VOUCHED
                or score < config.min_score
                or probability < config.min_error_probability
            ):
                unreported.append(shape)
                continue
            if cause != NEIGHBOURS_CAUSE:
                # After the report's choice: it changes the probability,
                # and the score as the label's doubt does (its fourth
                # root: a habit ranks under an excess in a few images),
                # not which patches are reported.
                g, s = shape.given_label, shape.suggested_label
                excess = 1.0
                if habits is not None:
                    excess = stats.excess_share(
                        g, s, float(habits[1][g, s]), float(habits[0][g])
                    )
                # Without neighbouring frames to check the model, the
                # doubt at 1% resolution takes its confident mistakes for
                # label errors, and read finer it takes label errors next
                # to the other class for its mistakes: the probability
                # keeps the geometric mean of the two (``fine_doubts``).
                held = doubt
                if vouched is None:
                    fine = stats.label_doubt(g, s, given_prob, fine=True)
                    held = (doubt * fine) ** 0.5
                probability *= _calibrated(
                    pair_share, doubt, held, excess, blind
                )
                score *= excess**DOUBT_IN_SCORE
            error_type = classify_error(
                shape.given_label,
                shape.suggested_label,
                given_prob=given_prob,
                inside_share=shape.inside_share,
                statistics=stats,
                config=config,
            )
            patches.append(
                Patch(
                    image_index=image_index,
                    box=shape.box,
                    image_shape=image_shape,
                    mask=shape.mask,
                    given_label=shape.given_label,
                    suggested_label=shape.suggested_label,
                    score=score,
                    area=shape.area,
                    coverage=shape.coverage,
                    inside_share=shape.inside_share,
                    given_prob=given_prob,
                    suggested_prob=suggested_prob,
                    error_type=error_type,
                    error_probability=probability,
                    cause=cause,
                    evidence=evidence_from_probs(
                        probs,
                        _masked_share(region_flagged, shape),
                        stats.thresholds[shape.given_label],
                        vouched=share_vouched,
                        contradicted=share_contradicted,
                        relabelled=None
                        if previous is None
                        else relabelled_share(
                            *previous,
                            shape.suggested_label,
                            shape.box,
                            shape.mask,
                        ),
                    ),
                )
            )
        return patches, unreported


def _calibrated(
    rate: float, doubt: float, held: float, excess: float, misses: float
) -> float:
    """The factor that takes a patch's probability from ``size x rate x
    doubt`` to ``size x min(rate, held, excess, misses)`` (its vouched
    share and run kept; ``held`` the label's doubt it keeps): the pair's
    error rate and the label's doubt both estimate whether the label is
    wrong from the same pixels, so their product counts it twice;
    ``excess`` (``ClassStatistics.excess_share``)
    is the share of the pair's disagreement in the image beyond the
    model's habit (BENCHMARKS.md, "Where the expected count goes wrong");
    ``misses`` (``ClassStatistics.miss_share``, where the suggested class
    is much more frequent than the given one) the share of the model's
    misses of the given class that label errors can explain: a model blind
    to a thin, rare class calls its correct labels the class around them,
    and cannot testify against them."""
    both = rate * doubt
    return min(rate, held, excess, misses) / both if both > 0 else 1.0


def _testified(
    doubt: float,
    ratio: float,
    rest: tuple[float, float],
    contradicted: tuple[float, float],
) -> float:
    """A patch's ``doubt`` over its parts, each ``(size factor, share)``:
    on the ``rest`` not vouched for as it is, on the ``contradicted`` part
    raised by the neighbours' testimony (likelihood ``ratio``)."""
    (size, share), (sharp, testified) = rest, contradicted
    return (
        size * doubt * share
        + sharp * doubt_with_testimony(doubt, ratio) * testified
    )


def _camera_motion(previous: tuple[np.ndarray, np.ndarray] | None) -> float:
    """How far the camera may have moved since the previous image, in
    units of the image's larger side, for the linker of repeats:
    ``MAX_MOTION`` where the previous image is a view of the same scene
    (``previous`` set), else 0."""
    return 0.0 if previous is None else MAX_MOTION


def _masked_share(flags: np.ndarray, shape: PatchGeometry) -> float:
    """Share of a patch's pixels set in the image's ``(H, W)`` flags."""
    x, y, w, h = shape.box
    selected = flags[y : y + h, x : x + w][shape.mask]
    # the mean of bools, without np.mean's overhead (same float)
    return int(np.count_nonzero(selected)) / selected.size


def _signature(signature: ArrayLike | None) -> np.ndarray | None:
    """An image's signature as a float32 vector (``None`` if unknown)."""
    if signature is None:
        return None
    return np.asarray(signature, dtype=np.float32).ravel()


def _issue_pair(
    given: int, suggested: int, cause: str | None
) -> tuple[int, int]:
    """The (given, suggested) labels a patch is grouped by: a shifted
    label's patches form one issue (``SHIFTED``) whatever their classes,
    and so do the labels their neighbouring frames contradict."""
    if cause == SHIFTED_CAUSE:
        return SHIFTED, SHIFTED
    if cause == NEIGHBOURS_CAUSE:
        return NEIGHBOURS, NEIGHBOURS
    return given, suggested


def _with_shift_cause(
    patches: list[Patch], shift: LabelShift, label: np.ndarray
) -> list[Patch]:
    """Marks the patches that the moved label explains (it carries their
    suggested class on at least half their pixels); they are general
    errors, whatever their classes' rules say."""
    moved = shift.moved(label)
    out = []
    for p in patches:
        x, y, w, h = p.box
        agree = moved[y : y + h, x : x + w][p.mask] == p.suggested_label
        if 2 * np.count_nonzero(agree) >= agree.size:
            p = dataclasses.replace(
                p, cause=SHIFTED_CAUSE, error_type="general"
            )
        out.append(p)
    return out


# Classes rarer than this are weighted as if this frequent.
MIN_FREQUENCY = 1e-3


def class_weights(
    stats: ClassStatistics, strength: float, max_background: float = 1.0
) -> Tensor | None:
    """``(K,)`` class-prior correction ``f ** -strength`` of the model's
    probabilities, where ``f`` are the classes' pixel frequencies in the
    labels (floored at ``MIN_FREQUENCY``), or ``None`` when ``strength``
    is 0.

    A model trained on the labels carries their class prior: it leans
    towards frequent classes, so its disagreement with a rare label in
    favour of a frequent class is weak evidence, and a rare object it half
    sees is strong evidence. Weighting by the inverse prior before the
    argmax (logit adjustment, Menon et al., 2021) takes that into account.
    """
    if strength == 0:
        return None
    f = np.maximum(stats.frequencies, MIN_FREQUENCY)
    weights = (f / f.max()) ** -strength
    cap = max_background / np.maximum(stats.background_probs, 1e-12)
    return torch.as_tensor(np.clip(weights, None, np.maximum(cap, 1))).float()


def margin_probs(probs: Tensor, weights: Tensor | None, top: int) -> Tensor:
    """``(..., K)`` probabilities that margins are taken on: weighted by
    ``weights`` (the prior correction) and renormalized over the ``top``
    largest. Without the renormalization over the top classes, the noise
    of every class the model does not assert would shrink all margins as
    classes are added."""
    if weights is None and probs.shape[-1] <= top:
        return probs  # already normalized over all its classes
    adjusted = probs if weights is None else probs * weights
    if adjusted.shape[-1] > top:
        kept = adjusted.topk(top, dim=-1).values
    else:
        kept = adjusted
    return adjusted / kept.sum(dim=-1, keepdim=True).clamp(min=1e-12)


def _pixel_suggestions(
    labels: Tensor,
    pred_probs: Tensor,
    p_given: Tensor,
    thresholds: Tensor,
    min_confidence: float,
    weights: Tensor | None = None,
) -> Tensor:
    """``(N, H, W)`` suggested class of the flagged pixels, else -1.

    The suggestion is the (prior-corrected) argmax among the confident
    classes (``p_k`` at least ``min(t_k, min_confidence)``). A pixel is
    flagged when it differs from the label and the label is unconfident
    (``p_g < t_g``), or the suggestion reaches its own class threshold
    (``p_s >= t_s``): confident learning's rule, which lets a class the
    model is unsure of everywhere (a low ``t_g``) be corrected. Only
    pixels whose given class could lose are searched.
    """
    cutoff = thresholds.clamp(max=min_confidence)
    given = labels.clamp(min=0)
    candidates = (labels >= 0) & (
        p_given
        < _flaggable_below(thresholds, weights, min_confidence).take(given)
    )
    # flat indices: one index per pixel is several times faster than three
    flat = candidates.reshape(-1).nonzero()[:, 0]
    p_max, argmax = max_at_pixels(pred_probs, flat, weights, cutoff)
    given, p_given = labels.take(flat), p_given.take(flat)
    flagged = (
        (argmax != given)
        & (p_max >= cutoff.take(argmax))
        & (
            (p_given < thresholds.take(given))
            | (p_max >= thresholds.take(argmax))
        )
    )
    suggested = torch.full_like(
        labels, -1, memory_format=torch.contiguous_format
    )
    suggested.view(-1)[flat[flagged]] = argmax[flagged]
    return suggested


def _flaggable_below(
    thresholds: Tensor, weights: Tensor | None, min_confidence: float
) -> Tensor:
    """``(K,)`` given-class probability a pixel or region must be below to
    be flagged at all: above it the given class is certainly the
    (weighted) argmax, or no other class can reach the lowest confidence
    cutoff."""
    k = len(thresholds)
    lowest_cutoff = float(thresholds.clamp(max=min_confidence).min())
    room = certain_argmax(k) * 2 - lowest_cutoff
    certain = torch.as_tensor(
        certain_argmax(k, weights), dtype=thresholds.dtype
    ).to(thresholds.device)
    return certain.clamp(max=room).expand(k)


def _apply_region_suggestions(
    suggested: Tensor,
    pred_probs: Tensor,
    p_given: Tensor,
    regions: list[LabelRegions],
    thresholds: Tensor,
    min_confidence: float,
    weights: Tensor | None = None,
    min_margin: float = 0.0,
    margin_classes: int = FinderConfig.margin_classes,
) -> tuple[Tensor, Tensor]:
    """Flags whole label regions whose mean probabilities confidently name
    another class (as pixels do, the prior-corrected argmax among the
    confident classes); their pixels take that suggestion.

    A region is flagged only when its (prior-adjusted) margin is at least
    ``min_margin``, and only when its mean given-class probability is below
    its class's threshold: a flag that relabels a whole region keeps the
    stricter rule (the confident-learning exception of pixel flags added
    nothing on CamVid train and cost patch precision). The full
    ``K``-class means are computed for those doubtful regions alone, from
    their pixels alone.
    """
    region_flagged = torch.zeros_like(suggested, dtype=torch.bool)
    cutoff = thresholds.clamp(max=min_confidence)
    bound = torch.minimum(
        thresholds, _flaggable_below(thresholds, weights, min_confidence)
    )
    pixels = _doubtful_region_pixels(
        regions, p_given.cpu().numpy(), bound.cpu().numpy()
    )
    if pixels is None:
        return suggested, region_flagged
    flat, ids, given = (
        torch.as_tensor(a, device=suggested.device) for a in pixels
    )
    means = pixel_means(pred_probs, flat, ids, len(given))
    p_max, argmax = weighted_max(means, weights, cutoff)
    adjusted = margin_probs(means, weights, margin_classes)
    margin = adjusted.gather(1, argmax[:, None]) - adjusted.gather(
        1, given[:, None]
    )
    flagged = (
        (argmax != given)
        & (p_max >= cutoff[argmax])
        & (means.gather(1, given[:, None])[:, 0] < thresholds[given])
        # a region whose patch could never score min_score is left to its
        # pixel flags
        & (margin[:, 0] >= min_margin)
    )
    keep = flagged[ids]
    flat = flat[keep]
    suggested = (
        suggested.reshape(-1)
        .index_put((flat,), argmax[ids[keep]])
        .view(suggested.shape)
    )
    region_flagged.view(-1)[flat] = True
    return suggested, region_flagged


def _doubtful_region_pixels(
    regions: list[LabelRegions], p_given: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, ...] | None:
    """Pixels (flat index into the batch's pixels, region, region class)
    of the regions whose mean given-class probability is at most their
    class's bound, in raster order; regions are numbered 0.. over the
    batch."""
    parts, offset = [], 0
    for i, r in enumerate(regions):
        if not len(r.labels):
            continue
        flat = r.ids.ravel() + 1
        sums = np.bincount(flat, weights=p_given[i].ravel())[1:]
        doubtful = np.flatnonzero(sums <= bounds[r.labels] * r.areas)
        if not doubtful.size:
            continue
        lookup = np.full(len(r.labels) + 1, -1, dtype=np.int64)
        lookup[doubtful + 1] = np.arange(offset, offset + doubtful.size)
        global_ids = lookup[flat]
        pixels = np.flatnonzero(global_ids >= 0)
        parts.append(
            (pixels + i * flat.size, global_ids[pixels], r.labels[doubtful])
        )
        offset += doubtful.size
    if not parts:
        return None
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _pooled_probs(
    pred_probs: Tensor, patch_ids: list[np.ndarray]
) -> np.ndarray:
    """``(P, K)`` probabilities of every patch of a batch: its pixels'
    normalised geometric mean (log-linear pooling).

    Pooled in the logs, a patch's probabilities follow a change of the
    model's temperature as a pixel's do, so they are read against the
    pixel-level statistics (the label's doubt, the pair's error share) on
    the same scale; and a patch whose pixels mostly rule its label out is
    not kept in doubt by its few sure ones, as an arithmetic mean would
    (an overconfident model's blurred edge). Measured: BENCHMARKS "A
    patch's probabilities pooled in the logs"."""
    flat, ids, count = labelled_pixels(patch_ids)
    if count == 0:
        return np.zeros((0, pred_probs.shape[1]), dtype=np.float32)
    device = pred_probs.device
    return (
        pooled_means(
            pred_probs,
            torch.as_tensor(flat, device=device),
            torch.as_tensor(ids, device=device),
            count,
        )
        .cpu()
        .numpy()
    )


def find_label_errors(
    labels: ArrayLike,
    pred_probs: ArrayLike,
    *,
    class_names: Sequence[str] | None = None,
    ignore_index: Sequence[int] = (),
    logits: bool = False,
    config: FinderConfig | None = None,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    signatures: ArrayLike | None = None,
) -> tuple[list[Patch], FinderSummary]:
    """Finds label errors in in-memory arrays.

    N - number of images, K - number of classes, H, W - mask size.

    Args:
        labels: ``(N, H, W)`` integer labels.
        pred_probs: ``(N, K, H, W)`` probabilities (or logits).
        class_names: the K class names (default ``"0"``, ``"1"``, ...).
        ignore_index: mask values that are never scored.
        logits: whether ``pred_probs`` are logits.
        config: the finder's thresholds.
        batch_size: images per batch; results do not depend on it.
        device: where to compute (default: where the inputs live).
        signatures: ``(N, D)`` the images' signatures
            (``fixer_core.neighbours.image_signature``), if the images are
            at hand: near-duplicate images are neighbouring frames. A
            video stored out of time order is best scored in the order
            :func:`fixer_core.view_order` gives, as the operator does.

    Returns:
        All patches (with their specific issue set), sorted by image then
        score, and the summary.

    Example:
        >>> from fixer_core.synthetic import make_scenes
        >>> scenes = make_scenes(8, seed=0)
        >>> patches, summary = find_label_errors(
        ...     scenes.labels, scenes.pred_probs,
        ...     class_names=scenes.class_names, ignore_index=[255])
        >>> summary.num_images
        8
    """
    check_find_inputs(labels, pred_probs, batch_size)
    check_signatures(signatures, len(labels))
    labels = as_tensor(labels)
    pred_probs = as_tensor(pred_probs)
    if pred_probs.ndim != 4:
        raise ValueError(
            "pred_probs must have a shape of (N, K, H, W), got "
            f"{tuple(pred_probs.shape)}"
        )
    if class_names is None:
        class_names = [str(k) for k in range(pred_probs.shape[1])]
    finder = LabelErrorFinder(
        class_names,
        ignore_index=ignore_index,
        logits=logits,
        config=config,
        device=device,
    )
    starts = range(0, len(labels), batch_size)
    for start in starts:
        finder.update(
            labels[start : start + batch_size],
            pred_probs[start : start + batch_size],
        )
    found = []
    for start in starts:
        stop = start + batch_size
        more = stop < len(labels)
        for image in finder.find(
            labels[start:stop],
            pred_probs[start:stop],
            following=labels[stop] if more else None,
            signatures=None if signatures is None else signatures[start:stop],
            following_signature=signatures[stop]
            if more and signatures is not None
            else None,
        ):
            found += image
    found = discount_runs(found, finder.run_lengths)
    summary = finder.summary()
    patches = [
        dataclasses.replace(p, issue=summary.issue_of(p)) for p in found
    ]
    patches.sort(key=lambda p: (p.image_index, -p.score))
    return patches, summary


def error_map(
    image_shape: tuple[int, int],
    patches: Iterable,
) -> np.ndarray:
    """``(H, W)`` float32 probability that each pixel's label is wrong:
    each patch's ``error_probability`` as the image shows it
    (``fixer_core.repeats.frame_probability``) over its pixels, 0
    elsewhere. Its mean is the image's ``image_error_score``."""
    out = np.zeros(image_shape, dtype=np.float32)
    for p in patches:
        x, y, w, h = p.box
        window = out[y : y + h, x : x + w]
        window[p.mask] = np.maximum(window[p.mask], frame_probability(p))
    return out


def image_error_score(patches: Iterable[Patch]) -> float:
    """Expected share of an image's pixels whose label is wrong: its
    patches' areas weighted by their ``error_probability`` as the image
    shows it (``fixer_core.repeats.frame_probability``), over the image's
    pixels (0 without patches). Unlike a per-patch maximum it keeps ranking
    images that hold many or large errors."""
    wrong, pixels = 0.0, 0
    for p in patches:
        wrong += frame_probability(p) * p.area
        pixels = p.image_shape[0] * p.image_shape[1]
    return wrong / pixels if pixels else 0.0


def _interval(mean: float, variance: float) -> tuple[float, float]:
    """A 95% normal interval, clipped at zero."""
    half = 1.96 * variance**0.5
    return max(mean - half, 0.0), mean + half
