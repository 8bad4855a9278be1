"""Drift monitoring: read the request log, test it against the bundle, report.

``logs`` reads the request and feedback logs, ``detectors`` wraps alibi-detect,
``cache`` keeps fitted detectors between runs, ``report`` writes drift.json/drift.md/PNGs,
``check`` ties them together for ``gitml drift check`` (``cli``).
"""
