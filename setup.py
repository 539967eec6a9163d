"""Packaging for tf_stackelberg (multi-generator Stackelberg GANs + Wang-Landau latent MCMC)."""
import setuptools

setuptools.setup(
    name="tf_stackelberg",
    version="0.1.0",
    description=("Stackelberg GANs (K generators vs one discriminator) and adaptive "
                 "Wang-Landau latent MCMC in TensorFlow 2 / Keras / TFP."),
    packages=setuptools.find_packages(include=["tf_stackelberg", "tf_stackelberg.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "tensorflow-probability[tf]==0.25.0",
        # Installed by the [tf] extra of tensorflow-probability; pinned to TF's release.
        "tf-keras==2.21.0",
        "keras==3.15.1",
        "tensorboard==2.21.0",
        "tensorflow-datasets==4.9.10",
        # Needed by tensorflow-datasets 4.9.10 but not declared by it.
        "importlib_resources==7.1.0",
        "pillow==13.0.0",
        "absl-py==2.5.1",
        "numpy==2.4.6",
        "matplotlib==3.11.2",
    ],
    extras_require={"test": ["pytest==9.0.3", "pytest-timeout==2.4.0", "pytest-xdist==3.8.0",
                             "scipy==1.17.1"]},
    entry_points={"console_scripts": ["tf_stackelberg=tf_stackelberg.main:run"]},
)
