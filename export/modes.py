"""The quantization modes an export offers (no TensorFlow here: the CLI's help needs these fast)."""

MODES = ("none", "dynamic", "float16", "int8", "int16x8")
DEFAULT_QUANTIZED_MODE = "int8"  # what `--quantize` alone means: full integer, int8 in and out
TARGETS = ("edge", "micro")  # micro: also verified on TFLM, with C++ sources for a firmware
DEFAULT_REPRESENTATIVE = 300  # class-balanced training digits that calibrate int8 and int16x8
