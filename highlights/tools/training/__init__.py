"""Training and evaluation of the per-face models (smile, child/adult) on labelled face images.

``highlights train`` and ``highlights evaluate`` are thin layers over :func:`train.train_model`
and :func:`evaluate.evaluate_model`.
"""
