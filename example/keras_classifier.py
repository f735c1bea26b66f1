"""Tutorial: a text classifier in Keras on BERT features (TF2's successor of tf.estimator).

1.10 trained a `DNNClassifier` with `tf.estimator`; TensorFlow 2 dropped estimators, so
this trains a small Keras MLP instead. The sentences are encoded once by the server and
the network learns on the fixed vectors; a `tf.data` pipeline feeds it.

    python example/keras_classifier.py [--epochs 30] [--port P --port_out Q]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from helpers import example_parser, server_for

# a tiny topic data set: sport (0) or cooking (1)
TRAIN = [
    ("the striker scored twice in the second half", 0),
    ("the goalkeeper saved a penalty", 0),
    ("our team won the championship final", 0),
    ("the coach substituted two players", 0),
    ("she ran the marathon in record time", 0),
    ("the match ended in a draw", 0),
    ("the referee showed a red card", 0),
    ("he hit a home run in the ninth inning", 0),
    ("simmer the sauce for ten minutes", 1),
    ("add salt and pepper to taste", 1),
    ("bake the bread until golden brown", 1),
    ("chop the onions and fry them in butter", 1),
    ("whisk the eggs with sugar and flour", 1),
    ("the soup needs more garlic", 1),
    ("roast the chicken with lemon and thyme", 1),
    ("knead the dough and let it rise", 1),
]
TEST = [
    ("the players celebrated the winning goal", 0),
    ("the tennis final went to five sets", 0),
    ("stir the risotto slowly while adding stock", 1),
    ("grill the fish and serve it with rice", 1),
]
LABELS = ["sport", "cooking"]


def build_model(dim: int):
    """A one-hidden-layer MLP on sentence vectors."""
    import tensorflow as tf

    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(dim,), name="feature"),
            tf.keras.layers.Dense(32, activation="relu"),
            tf.keras.layers.Dropout(0.1),
            tf.keras.layers.Dense(len(LABELS), activation="softmax"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main(argv: list[str] | None = None) -> int:
    import tensorflow as tf

    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    options = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(0)
    with server_for(options) as server, server.client() as bc:
        train_x = bc.encode([text for text, _ in TRAIN])
        test_x = bc.encode([text for text, _ in TEST])
    train_y = np.array([label for _, label in TRAIN])
    test_y = np.array([label for _, label in TEST])
    print(f"features: train {train_x.shape}, test {test_x.shape}")

    train_ds = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(16, seed=0).batch(8)
    test_ds = tf.data.Dataset.from_tensor_slices((test_x, test_y)).batch(8)
    model = build_model(train_x.shape[1])
    history = model.fit(train_ds, epochs=options.epochs, verbose=0)
    print(f"train loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}")
    _, accuracy = model.evaluate(test_ds, verbose=0)
    predictions = model.predict(test_x, verbose=0).argmax(axis=1)
    for (text, label), predicted in zip(TEST, predictions):
        mark = "ok" if predicted == label else "WRONG"
        print(f"  {mark:>5}  {LABELS[predicted]:>7}  {text}")
    print(f"test accuracy: {accuracy:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
