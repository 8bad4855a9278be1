"""`gitml init`: a new project with the reference layout, and updates that keep the user's edits.

``files`` finds the reference instance and the templates in the package, ``render`` builds
the whole project in memory, ``plan`` compares it with the disk file by file, and
``project`` writes it and sets up git and DVC.
"""
