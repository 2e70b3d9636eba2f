"""The quantization modes an export offers (no TensorFlow here: the CLI's help needs these fast)."""

MODES = ("none", "dynamic", "float16", "int8", "int16x8")
DEFAULT_QUANTIZED_MODE = "int8"  # what `--quantize` alone means: full integer, int8 in and out
TARGETS = ("edge", "micro")  # micro: also verified on TFLM, with C++ sources for a firmware
DEFAULT_REPRESENTATIVE = 300  # class-balanced training digits that calibrate int8 and int16x8
# Where each mode runs, and how well (make bench, x86 AMD EPYC; a Pi's own figures come from edge-bench).
RUNS_ON = {
    "none": "LiteRT and tflite-runtime, both through XNNPACK",
    "dynamic": "LiteRT (XNNPACK); tflite-runtime ~7x slower on x86; not TFLM (float activations)",
    "float16": "LiteRT and tflite-runtime (weights widened to float32 at load); not TFLM",
    "int8": "LiteRT (XNNPACK), tflite-runtime (~7x slower on x86), TFLM (--target micro): integer only",
    "int16x8": "LiteRT and tflite-runtime, reference kernels only (on LiteRT ~17x int8's latency); not TFLM",
}
