"""Looking inside convnets: layer choice, feature models, Grad-CAM, backbones, DeepDream, style."""
