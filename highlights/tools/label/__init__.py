"""Labelling in the browser: label a processed lesson's faces and frames, then retrain on them.

``highlights label OUT --manifest MANIFEST --labels DIR`` serves a small local web page over the
lessons ``highlights run`` wrote to ``OUT``: a lesson picker, a strip of thumbnails and a range
selector over lesson time, batches of faces to label child/adult or smiling/not (pre-labelled by
the shipped models if asked), and frame-range labels for adult presence. What it writes under
``DIR`` (:mod:`highlights.tools.label.store`) is what ``highlights train smile|age --data DIR`` reads.

Modules, in the order a request flows: :mod:`~highlights.tools.label.lessons` (processed lessons,
frames, face squares), :mod:`~highlights.tools.label.store` (the labels folder),
:mod:`~highlights.tools.label.session` (batches, saves: the logic), :mod:`~highlights.tools.label.app` (the
HTTP layer and :func:`~highlights.tools.label.app.serve`).
"""
