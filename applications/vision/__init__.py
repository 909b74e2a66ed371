"""fastlearn.vision"""
from fastlearn.vision.image import (LoadImage, LoadMask, PILImage, PILImageBW, PILMask, TensorImage, image2tensor,
                                    imagenet_stats, load_image, show_image, verify_image, verify_images)
from fastlearn.vision.data import (ImageBlock, ImageDataBunch, ImageDataLoaders, MaskBlock, PointBlock,
                                   SegmentationDataBunch, SegmentationDataLoaders, ToPoints)
from fastlearn.vision.transforms import (CropPad, PadMode, PointScaler, RandomResizedCrop, Resize,
                                         ResizeMethod, ToTensor)
from torchvision.models import (convnext_base, convnext_small, convnext_tiny, densenet121, densenet161,
                                densenet169, densenet201, efficientnet_b0, efficientnet_b1, efficientnet_b2,
                                efficientnet_b3, mobilenet_v3_large, mobilenet_v3_small, regnet_y_400mf,
                                resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, vgg16_bn,
                                wide_resnet50_2)

from fastlearn.data.results import show_results
from fastlearn.loading import load_learner
from fastlearn.inference import test_time_augmentation as tta
from fastlearn.vision.augment import (AffineCoordTfm, Dihedral, Flip, RandomResizedCropGPU, Rotate, Warp, Zoom,
                                      aug_transforms)
from fastlearn.vision.efficientnet_lite import (EfficientNetLite, efficientnet_lite0, efficientnet_lite1,
                                               efficientnet_lite2)
from fastlearn.vision.interpret import ClassificationInterpretation
from fastlearn.vision.layers import (AdaptiveConcatPool2d, ConvLayer, Flatten, NormType, ResBlock, SigmoidRange,
                                     SimpleSelfAttention, sigmoid_range)
from fastlearn.vision.learner import cnn_learner, create_body, create_head, vision_learner, vision_model
from fastlearn.vision.lighting import Brightness, Contrast, LightingTfm
from fastlearn.vision.models import model_meta
from fastlearn.vision.unet import DynamicUnet, unet_learner
from fastlearn.vision.xresnet import XResNet, init_cnn, xresnet18, xresnet34, xresnet50, xresnet101, xresnet152
from fastlearn.vision.image_folders import download_images, resize_image, resize_images

_models = [
    "convnext_base", "convnext_small", "convnext_tiny", "densenet121", "densenet161", "densenet169",
    "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "mobilenet_v3_large", "mobilenet_v3_small", "regnet_y_400mf", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnet152", "resnext50_32x4d", "vgg16_bn", "wide_resnet50_2",
]
_learning = [
    "AdaptiveConcatPool2d", "AffineCoordTfm", "Brightness", "ClassificationInterpretation", "Contrast",
    "Dihedral", "EfficientNetLite", "Flatten", "Flip", "LightingTfm", "RandomResizedCropGPU", "Rotate",
    "SigmoidRange", "Warp", "Zoom", "aug_transforms", "cnn_learner", "create_body", "create_head",
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "load_learner", "model_meta",
    "download_images", "resize_image", "resize_images", "show_results", "sigmoid_range", "tta", "vision_learner", "vision_model",
    "DynamicUnet", "unet_learner", "ConvLayer", "NormType", "ResBlock", "SimpleSelfAttention", "XResNet", "init_cnn",
    "xresnet18", "xresnet34", "xresnet50", "xresnet101", "xresnet152",
]

__all__ = _models + _learning + [
    "CropPad", "ImageBlock", "ImageDataBunch", "ImageDataLoaders", "LoadImage", "LoadMask", "MaskBlock",
    "PILImage", "PILImageBW", "PILMask", "PadMode", "PointBlock", "PointScaler", "RandomResizedCrop",
    "Resize", "ResizeMethod", "SegmentationDataBunch", "SegmentationDataLoaders", "TensorImage", "ToPoints",
    "ToTensor",
    "image2tensor", "imagenet_stats", "load_image", "show_image", "verify_image", "verify_images",
]
