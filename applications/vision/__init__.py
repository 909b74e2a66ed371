"""fastlearn.vision"""
from fastlearn.vision.core import (LoadImage, LoadMask, PILImage, PILImageBW, PILMask, image2tensor,
                                   imagenet_stats, load_image, show_image, verify_image, verify_images)
from fastlearn.vision.data import (ImageBlock, ImageDataBunch, ImageDataLoaders, MaskBlock, PointBlock,
                                   SegmentationDataBunch, SegmentationDataLoaders, ToPoints)
from fastlearn.vision.transforms import (CropPad, PadMode, PointScaler, RandomResizedCrop, Resize,
                                         ResizeMethod, ToTensor)

__all__ = [
    "CropPad", "ImageBlock", "ImageDataBunch", "ImageDataLoaders", "LoadImage", "LoadMask", "MaskBlock",
    "PILImage", "PILImageBW", "PILMask", "PadMode", "PointBlock", "PointScaler", "RandomResizedCrop",
    "Resize", "ResizeMethod", "SegmentationDataBunch", "SegmentationDataLoaders", "ToPoints", "ToTensor",
    "image2tensor", "imagenet_stats", "load_image", "show_image", "verify_image", "verify_images",
]
