"""The resolvers of conf/: a run directory of its own, even for two runs in the same second."""


def test_two_runs_in_the_same_second_never_share_a_directory(tmp_path):
    from kerasrun.config.resolvers import forget_unique_dirs, unique_dir

    first = unique_dir(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    assert unique_dir(str(tmp_path / "run")) == first  # Hydra resolves it again: same answer
    forget_unique_dirs()  # a new process
    assert unique_dir(str(tmp_path / "run")) == str(tmp_path / "run_2")
