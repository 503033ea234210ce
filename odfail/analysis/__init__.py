"""Analysis: stored outcomes and match tables -> the questions of a failure-mode walkthrough.

Takes a workspace whose runs have been ingested (it matches what it needs on first use, through
``odfail.match.outcomes``, and stores it); gives polars tables and result dataclasses: ``classes`` (outcomes,
AP/AR and the best-F1 score threshold per class; PR curves at any IoU), ``calibration`` (does a 0.9 score mean
90 % right?), ``compare`` (what a second run fixed and what it broke).
"""
