// Classify one digit on a microcontroller with TensorFlow Lite Micro and the model that
// `lstm-edge export RUN --quantize --target micro --c-name lstm_digits --out model.tflite` wrote:
// model_data.h / model_data.cc beside model.tflite (copy both next to this file).
//
// The digit must already be in the model's form: 28x28 pixels, ink 1.0 on background 0.0,
// MNIST's layout (the ink's box fitted into 20x20 and centred by mass). A camera pipeline does
// that before calling classify(); see edge/preprocess.py for the recipe.
//
// Build notes: README.md in this folder (Raspberry Pi Pico SDK, Arduino).

#include <cmath>
#include <cstdint>

#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

alignas(16) uint8_t tensor_arena[lstm_digits_arena_bytes];
tflite::MicroMutableOpResolver<lstm_digits_op_count> resolver;
tflite::MicroInterpreter* interpreter = nullptr;

}  // namespace

// Returns false when the model does not load: ops not registered, or an arena too small.
bool setup_classifier() {
  const tflite::Model* model = tflite::GetModel(lstm_digits_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return false;
  if (!lstm_digits_register_ops(resolver)) return false;
  static tflite::MicroInterpreter static_interpreter(model, resolver, tensor_arena, lstm_digits_arena_bytes);
  interpreter = &static_interpreter;
  return interpreter->AllocateTensors() == kTfLiteOk;
}

// pixels: 28*28 floats in [0, 1], row by row. Returns the digit (0-9), or -1 on failure;
// *confidence gets its probability.
int classify(const float* pixels, float* confidence) {
  TfLiteTensor* input = interpreter->input(0);
  for (int i = 0; i < 28 * 28; ++i) {
    int q = static_cast<int>(std::lround(pixels[i] / lstm_digits_input_scale)) + lstm_digits_input_zero_point;
    input->data.int8[i] = static_cast<int8_t>(q < -128 ? -128 : (q > 127 ? 127 : q));
  }
  interpreter->Reset();  // each digit from a clean state, as the export's TFLM parity check ran it
  if (interpreter->Invoke() != kTfLiteOk) return -1;
  const TfLiteTensor* output = interpreter->output(0);
  int best = 0;
  for (int d = 1; d < 10; ++d) {
    if (output->data.int8[d] > output->data.int8[best]) best = d;
  }
  *confidence = (output->data.int8[best] - lstm_digits_output_zero_point) * lstm_digits_output_scale;
  return best;
}
