"""The options of a LiteRT export, checked without TensorFlow, so that the command line refuses them in a fraction
of a second, before anything loads or trains."""

#: `quantize=` of a LiteRT export: float32 weights, float16 weights, dynamic-range int8, or full-integer int8.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def check_options(quantize, input_type, output_type, calibration_size, verification_size):
    """Raises ValueError naming the argument for LiteRT options out of range or that do not fit together."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)}; got {quantize!r}.")
    for argument, value, choices in (("input_type", input_type, ("float32", "uint8")),
                                     ("output_type", output_type, ("float32", "uint8"))):
        if value not in choices:
            raise ValueError(f"{argument} must be {' or '.join(map(repr, choices))}; got {value!r}.")
    if output_type == "uint8" and quantize != "int8":
        raise ValueError(f"output_type='uint8' is for full-integer exports; pass quantize='int8' with it (got "
                         f"quantize={quantize!r}).")
    for argument, value in (("calibration_size", calibration_size), ("verification_size", verification_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument} must be a whole number >= 1; got {value!r}.")
