import diffmodel


def test_package_imports():
    assert diffmodel.__doc__
