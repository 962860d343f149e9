"""svrens_tf: SVR-Ens and its base transfer attacks in TensorFlow 2, on the released TF-slim checkpoints."""
from setuptools import find_packages, setup

setup(
    name='svrens_tf',
    version='0.1.0',
    description=__doc__,
    python_requires='>=3.10',
    packages=find_packages(include=['svrens_tf', 'svrens_tf.*']),
    package_data={'svrens_tf': ['resources/*']},
    # TensorFlow comes through an extra: the CPU wheel (274 MB) and the CUDA wheel (572 MB)
    # are different distributions, and neither satisfies a requirement on the other's name.
    install_requires=['numpy', 'scipy', 'imageio', 'absl-py'],
    extras_require={
        'cpu': ['tensorflow-cpu>=2.16'],
        'gpu': ['tensorflow[and-cuda]>=2.16'],
        'test': ['pytest'],
        'plots': ['matplotlib'],
    },
    entry_points={'console_scripts': [
        'svrens-attack=svrens_tf.cli.attack:run',
        'svrens-evaluate=svrens_tf.cli.evaluate:run',
        'svrens-download=svrens_tf.cli.download:run',
        'svrens-report=svrens_tf.cli.report:run',
    ]},
)
