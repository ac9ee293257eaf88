"""Speech backends.

`base` is the interface; `factory` and `chain` are the only modules that know them all."""
