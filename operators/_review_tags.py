"""Label tags that mark FIXER patches for review and record the verdicts.

Tags live on the detections of a run's ``<run_key>_patches`` field, so each
run keeps its own review. Reviewers set the verdict tags in the App (label
tags) or through the CVAT round trip.
"""

SAMPLED_TAG = "fixer:review"
CONFIRMED_TAG = "fixer:confirmed"
REJECTED_TAG = "fixer:rejected"
