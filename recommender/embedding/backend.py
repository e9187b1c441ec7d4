"""The one place TensorFlow is imported, so every caller gets the same quiet setup."""

import os


def load_tensorflow():
    """Import TensorFlow and Keras on first use and return ``(tf, keras)``.

    Importing TensorFlow takes seconds, so it happens only when a model actually runs,
    never when Django loads views, models or URLs.
    """
    # TensorFlow reads its C++ log level from the environment at import time; this is the
    # only way to keep its start-up banner out of the server and worker logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return tf, keras
