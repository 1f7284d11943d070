"""Fitted models: ordered clusters, their recipe, labelling any image."""
