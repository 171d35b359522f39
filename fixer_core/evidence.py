"""Why a patch was flagged: its evidence and a plain-words reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._pixels import pooled_means
from .neighbours import NEIGHBOURS_CAUSE, began_with_relabel

# Which of the finder's rules flagged a patch
PIXEL_RULE = "pixel"
REGION_RULE = "region"
RULES = (PIXEL_RULE, REGION_RULE)
TOP_CLASSES = 3


@dataclass(frozen=True)
class PatchEvidence:
    """What the finder saw on a patch.

    Attributes:
        top_labels: the model's most likely classes on the patch (by its
            pixels' probabilities pooled in the logs, as
            ``Patch.given_prob``), most likely first.
        top_probs: their pooled probabilities.
        given_threshold: the given class's threshold ``t_g`` (the model's
            mean probability on the pixels labelled with it).
        rule: ``"region"`` when most of the patch was flagged as part of
            a whole label region whose mean probabilities name another
            class, else ``"pixel"`` (flagged pixel by pixel).
        vouched: share of the patch's pixels that the previous and next
            images label as this one does, in place or where the scene
            moved (see ``fixer_core.neighbours``); ``None`` where the image
            has no such neighbours.
        contradicted: share of the patch's pixels that the previous and
            next images agree to label otherwise; ``None`` where the image
            has no such neighbours.
        relabelled: share of the patch's pixels that the previous image
            labels with the suggested class, as one region of about the
            patch's extent (else 0, see ``neighbours.relabelled_share``);
            ``None`` where the previous image is not a view of the same
            scene. Where a run of repeats begins, a majority means an
            object's label changed there while the model's view did not
            (see ``fixer_core.repeats``).
    """

    top_labels: tuple[int, ...]
    top_probs: tuple[float, ...]
    given_threshold: float
    rule: str
    vouched: float | None = None
    contradicted: float | None = None
    relabelled: float | None = None


def patch_evidence(
    probs: Tensor,
    mask: Tensor,
    region_flagged: Tensor,
    given_threshold: float,
    *,
    top: int = TOP_CLASSES,
) -> PatchEvidence:
    """The evidence of one patch.

    K - number of classes, h, w - the patch's box.

    Args:
        probs: ``(K, h, w)`` probabilities inside the patch's box.
        mask: ``(h, w)`` bool mask of the patch in its box.
        region_flagged: ``(h, w)`` bool, pixels flagged by the
            whole-region rule.
        given_threshold: the given class's threshold.
        top: how many classes to keep.

    Example:
        >>> probs = torch.tensor([0.2, 0.7, 0.1]).view(3, 1, 1)
        >>> probs = probs.expand(3, 2, 2)
        >>> mask = torch.ones(2, 2, dtype=torch.bool)
        >>> e = patch_evidence(probs, mask, ~mask, 0.8)
        >>> e.top_labels, e.rule
        ((1, 0, 2), 'pixel')
    """
    mask = mask.to(probs.device, torch.bool)
    # pooled in the logs, as the finder pools a patch (``Patch.given_prob``)
    flat = mask.reshape(-1).nonzero()[:, 0]
    pooled = pooled_means(probs[None], flat, torch.zeros_like(flat), 1)
    pooled = pooled[0].cpu().numpy()
    flagged = int(region_flagged.to(probs.device)[mask].sum())
    return evidence_from_probs(
        pooled, flagged / int(mask.sum()), given_threshold, top=top
    )


def evidence_from_probs(
    probs: np.ndarray,
    region_share: float,
    given_threshold: float,
    *,
    top: int = TOP_CLASSES,
    vouched: float | None = None,
    contradicted: float | None = None,
    relabelled: float | None = None,
) -> PatchEvidence:
    """The evidence of a patch from its ``(K,)`` pooled probabilities and
    the share of its pixels flagged by the whole-region rule (see
    :func:`patch_evidence`)."""
    # K Python floats sort faster than NumPy's argsort of a short row
    # (stable: equal values keep class order)
    values = probs.tolist()
    labels = sorted(range(len(values)), key=lambda k: -values[k])[:top]
    return PatchEvidence(
        top_labels=tuple(labels),
        top_probs=tuple(round(values[k], 4) for k in labels),
        given_threshold=round(float(given_threshold), 4),
        rule=REGION_RULE if region_share > 0.5 else PIXEL_RULE,
        vouched=_rounded(vouched),
        contradicted=_rounded(contradicted),
        relabelled=_rounded(relabelled),
    )


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(float(share), 4)


def same_confusion(pairs: Sequence[Hashable]) -> list[int]:
    """For each patch's (given, suggested) pair, the number of other
    patches of the run with the same pair.

    Example:
        >>> same_confusion([(1, 2), (1, 2), (2, 1)])
        [1, 1, 0]
    """
    counts = Counter(pairs)
    return [counts[p] - 1 for p in pairs]


def reason_text(
    given: str,
    suggested: str,
    *,
    top: Sequence[tuple[str, float]],
    rule: str | None,
    given_prob: float | None = None,
    given_threshold: float | None = None,
    cause: str | None = None,
    others: int = 0,
    issue: str | None = None,
    repeat: bool = False,
    run_length: int = 1,
    vouched: float | None = None,
    contradicted: float | None = None,
    relabelled: float | None = None,
    changed_run: bool = False,
) -> str:
    """One sentence in plain words on why a patch was flagged.

    Args:
        given: the class in the labels.
        suggested: the suggested class.
        top: the model's most likely classes on the patch with their
            pooled probabilities, most likely first.
        rule: ``"region"`` or ``"pixel"`` (see :class:`PatchEvidence`).
        given_prob: the patch's pooled probability of the given class.
        given_threshold: the given class's threshold.
        cause: what the finder found behind the patch beyond the model's
            disagreement (``Patch.cause``), e.g. a label shifted against
            its image; it comes first as the image's evidence.
        others: other patches of the run with the same (given, suggested)
            confusion.
        issue: the specific issue the patch belongs to, if any.
        repeat: whether the patch repeats one of the previous image
            (``Patch.repeat_of``).
        run_length: the images its run of repeats spans
            (``Patch.run_length``).
        vouched: share of the patch that the previous and next images
            label as this one does (``PatchEvidence.vouched``).
        contradicted: share of the patch that the previous and next images
            agree to label otherwise (``PatchEvidence.contradicted``).
        relabelled: share of the patch that the previous image labels
            with the suggested class (``PatchEvidence.relabelled``).
        changed_run: whether the patch's run began with a change of the
            label (``fixer_core.repeats.patch_keeps_score``).

    Example:
        >>> text = reason_text("Building", "Pole", top=[("Pole", 0.81)],
        ...                    rule="region", others=23)
        >>> print(text.replace("; ", ";\\n"))
        Labelled Building;
        the model sees Pole (0.81) over the whole region;
        23 other patches show the same confusion.
    """
    sees = _sees(suggested, top)
    parts = [f"Labelled {given}"]
    if cause:
        parts.append(f"{cause}: the model sees {sees} here")
    elif rule == REGION_RULE:
        parts.append(f"the model sees {sees} over the whole region")
    else:
        where = f"the model sees {sees} on this part of the region"
        if given_prob is not None and given_threshold is not None:
            where += (
                f" and gives {given} only {given_prob:.2f} (usually "
                f"{given_threshold:.2f} on its pixels)"
            )
        parts.append(where)
    parts.append(_others(others, issue))
    told = cause == NEIGHBOURS_CAUSE  # the cause says it already
    if not told and contradicted and round(contradicted, 2) > 0:
        parts.append(
            f"the previous and next images label {contradicted:.0%} of it "
            "otherwise"
        )
    if vouched is not None and round(vouched, 2) > 0:
        parts.append(
            f"the previous and next images label {vouched:.0%} of it "
            f"{given} too"
        )
    if repeat:
        parts.append(
            "the previous image shows the same disagreement here, with "
            "the same label"
        )
    elif run_length > 1:
        if changed_run and began_with_relabel(relabelled):
            parts.append(
                f"the previous image labels {relabelled:.0%} of it "
                f"{suggested}: the label changed here, the model's view "
                f"did not, and the next {run_length - 1} images repeat "
                "the label's mistake"
            )
        elif changed_run:
            parts.append(
                f"the same disagreement runs over {run_length} images, "
                "from one where the label changed and the model's view "
                "did not: this image repeats the label's mistake"
            )
        else:
            frames = (
                "image shows"
                if run_length == 2
                else f"{run_length - 1} images show"
            )
            parts.append(
                f"the next {frames} the same disagreement here, each "
                "labelled on its own: more likely the model's habit"
            )
    return "; ".join(parts) + "."


def _sees(suggested: str, top: Sequence[tuple[str, float]]) -> str:
    prob = dict(top).get(suggested)
    return suggested if prob is None else f"{suggested} ({prob:.2f})"


def _others(others: int, issue: str | None) -> str:
    if others == 0:
        text = "no other patch shows this confusion"
    elif others == 1:
        text = "1 other patch shows the same confusion"
    else:
        text = f"{others} other patches show the same confusion"
    return f"{text} (issue: {issue})" if issue else text


def explain_patches(
    patches: Sequence, class_names: Sequence[str]
) -> list[str]:
    """The reason (see :func:`reason_text`) of each patch of a whole run,
    e.g. the patches of ``find_label_errors``; patches without evidence
    get the pixel rule's wording."""
    from .repeats import patch_keeps_score  # repeats imports patches

    others = same_confusion(
        [(p.given_label, p.suggested_label) for p in patches]
    )
    out = []
    for p, n in zip(patches, others, strict=True):
        e = p.evidence
        top = () if e is None else e.top_labels
        out.append(
            reason_text(
                class_names[p.given_label],
                class_names[p.suggested_label],
                top=[
                    (class_names[k], v)
                    for k, v in zip(top, e.top_probs if e else (), strict=True)
                ],
                rule=e.rule if e else None,
                given_prob=p.given_prob,
                given_threshold=e.given_threshold if e else None,
                cause=p.cause,
                others=n,
                issue=p.issue,
                repeat=p.repeat_of is not None,
                run_length=p.run_length,
                vouched=e.vouched if e else None,
                contradicted=e.contradicted if e else None,
                relabelled=e.relabelled if e else None,
                changed_run=patch_keeps_score(p),
            )
        )
    return out
