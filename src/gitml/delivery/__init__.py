"""Progressive delivery that acts: ``gitml canary check`` judges a canary and proposes (or, past a hard
limit, applies) its promotion or rollback. ``compare`` is pure; ``check`` reads the files; ``pr`` opens the
pull request; ``run`` is the command's whole flow. See docs/delivery.md, "Canary check"."""
