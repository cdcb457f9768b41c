"""The course's learners that are not networks: their table, data, fitting, comparison, figures.

``catalogue`` names each learner, its settings and its scikit-learn twin;
``tabular`` loads a dataset as flat arrays; ``fitting`` compiles, times and
scores a learner (and its twin); ``figures`` draws what helps. The models
themselves are ``models/learners/``.
"""
