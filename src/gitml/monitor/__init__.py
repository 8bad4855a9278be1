"""Drift monitoring: read the request log, test it against the bundle, report.

``logs`` reads the request and feedback logs, ``detectors`` wraps alibi-detect,
``cache`` keeps fitted detectors between runs, ``report`` writes drift.json/drift.md/PNGs,
``check`` ties them together for ``gitml drift check`` (``cli``), and ``run`` does it for
every model of a repository, with a retraining pull request per drifting one (``gitml drift run``).
"""
