"""moodloop's training workflow: data, cleaning, training, evaluation and ONNX export.

Needs the `train` extra (torch, torchvision, fastai); `moodloop` imports it only
inside the training commands.
"""
