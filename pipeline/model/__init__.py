"""The networks: the segmentation-models-pytorch factory, model folders and checkpoints, inference, devices and
ImageNet weights."""
