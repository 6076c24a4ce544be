#!/usr/bin/env python3
"""Bad input on the molecular path: scripts/ase_calculator.py, scripts/analyze.py and experiments/molecule/{make_data,
md,plot}.py given files that are not what they take, or outputs that would write over an input. Each case must give
one error line naming the file or argument and what is wrong (a one-line ValueError for GradfitCalculator; for a
tool, exit status != 0, exactly one stderr line that starts with the tool's name, no traceback), and leave every file
as it was: no file made, none changed.

    /usr/bin/python3 tests/scripts/tools_inputs_test.py        (from the repository root; seconds)

analyze.py, make_data.py and a few md.py/plot.py cases run as subprocesses, as a user runs them; the other md.py
and plot.py cases call their main() in this process (same argv, stdout, stderr and exit status; it saves starting
torch for each). No gradfit_dist binary is needed: results files are written here with h5py, models are TorchScript
modules with the exported interface (tests/scripts/ase_scripts_test.py's SpringsWithNumbers). Needs ASE, h5py, numpy,
pandas, matplotlib and PyTorch (Debian: python3-ase python3-h5py python3-pandas python3-matplotlib python3-torch).
"""
import contextlib
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import h5py
    import numpy as np
    import torch
    import ase  # noqa: F401  (the calculator's; checked here for this error line)
except ImportError as error:
    sys.exit(f"tools_inputs_test.py: module '{error.name}' is missing for {sys.executable}: run this with "
             "/usr/bin/python3 after apt-get install python3-ase python3-h5py python3-torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
MOLECULE = os.path.join(ROOT, "experiments", "molecule")
ANALYZE = os.path.join(SCRIPTS, "analyze.py")
CALCULATOR_SCRIPT = os.path.join(SCRIPTS, "ase_calculator.py")
MAKE_DATA = os.path.join(MOLECULE, "make_data.py")
MD = os.path.join(MOLECULE, "md.py")
PLOT = os.path.join(MOLECULE, "plot.py")
sys.path.insert(0, SCRIPTS)
from ase_calculator import GradfitCalculator  # noqa: E402


def load_by_path(name, path):
    """The module at path, imported as `name` (registered in sys.modules, so TorchScript finds its source)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


helpers = load_by_path("ase_scripts_test", os.path.join(ROOT, "tests", "scripts", "ase_scripts_test.py"))
ETHANOL, ETHANOL_NUMBERS = helpers.ETHANOL, helpers.ETHANOL_NUMBERS
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class NotAnExport(torch.nn.Module):
    """A TorchScript module without the exported interface (no gradient, no architecture)."""

    def forward(self, x):
        return x.sum(1)


# ---------------------------------------------------------------------------------------------------- files

def write_results(path, fletcher32=False):
    """A minimal results.h5 that analyze.py accepts: /summary of two runs swept over lr, and their histories."""
    dtype = np.dtype([("id", "S16"), ("name", "S32"), ("status", "S16"), ("epochs_run", "i8"), ("final_loss", "f8"),
                      ("final_rel_grad_error", "f8"), ("best_loss", "f8"), ("best_val_loss", "f8"),
                      ("params", "S64")])
    rows = np.array([(b"r0", b"lr_0.1", b"done", 3, 1.0, 0.5, 0.9, np.nan, b"optimizer.lr=0.1"),
                     (b"r1", b"lr_0.01", b"done", 3, 2.0, 0.6, 1.9, np.nan, b"optimizer.lr=0.01")], dtype=dtype)
    with h5py.File(path, "w") as f:
        f.create_dataset("summary", data=rows, fletcher32=fletcher32)
        for row in rows:
            group = f.create_group("runs/" + row["name"].decode())
            group["epoch"] = np.arange(1, 4)
            group["train_loss"] = np.array([3.0, 2.0, 1.0])
            group["rel_grad_error"] = np.array([0.9, 0.7, 0.5])
            group["val_loss"] = np.full(3, np.nan)
    return path


def write_data(path, frames=20, numbers=ETHANOL_NUMBERS, seed=0, positions=ETHANOL):
    """A data file as scripts/ase_import.py writes it: x, grad (frames × 3 atoms) and the attribute numbers."""
    rng = np.random.default_rng(seed)
    x = (positions[None] + rng.normal(scale=0.08, size=(frames,) + positions.shape)).reshape(frames, -1)
    with h5py.File(path, "w") as f:
        f["x"], f["grad"], f["value"] = x, rng.normal(size=x.shape), rng.normal(size=frames)
        if numbers is not None:
            f.attrs["numbers"] = np.asarray(numbers, dtype=np.int64)
    return path


def write_text(path, text="hello, not a model\n"):
    with open(path, "w") as f:
        f.write(text)
    return path


def snapshot(folder):
    """Every file and folder under folder: relative path -> sha256 of its bytes (None for a folder)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            state[os.path.relpath(os.path.join(dirpath, name), folder)] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(path):
                state[os.path.relpath(path, folder)] = "broken link"
                continue
            with open(path, "rb") as f:
                state[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return state


def run_script(script, *args, cwd=None):
    """A tool run as a user runs it: (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, script] + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def run_main(module, *args):
    """module.main() with argv, stdout and stderr as a run of the script has them: (exit status, stdout, stderr).
    sys.exit("text") gives status 1 and the text on stderr, as the interpreter does; any other exception escapes
    (a traceback: the test fails)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = [module.__file__] + [str(a) for a in args]
    status = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                module.main()
            except SystemExit as exit_:
                if isinstance(exit_.code, str):
                    err.write(exit_.code + "\n")
                    status = 1
                else:
                    status = exit_.code or 0
    finally:
        sys.argv = saved
    return status, out.getvalue(), err.getvalue()


class ToolTestCase(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.dir = self.work.name
        self.addCleanup(self.work.cleanup)

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def saved_model(self, module=None, name="model.pt"):
        path = self.path(name)
        torch.jit.script(module if module is not None else helpers.SpringsWithNumbers()).save(path)
        return path

    def assert_one_line(self, message, *fragments):
        self.assertTrue(message.strip(), "an empty message")
        self.assertNotIn("\n", message.strip(), f"not one line: {message!r}")
        self.assertNotIn("Traceback", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def assert_tool_fails(self, result, tool, *fragments):
        """Exit status != 0, exactly one stderr line starting with 'TOOL: ' holding the fragments, no traceback."""
        status, _, stderr = result
        self.assertNotEqual(status, 0, f"{tool} accepted it: {stderr!r}")
        self.assertNotIn("Traceback", stderr)
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, f"not one line on stderr: {stderr!r}")
        self.assertTrue(lines[0].startswith(f"{tool}: "), lines[0])
        self.assert_one_line(lines[0], *fragments)
        return lines[0]

    def assert_unchanged(self, act, *fragments, tool):
        """act() fails as assert_tool_fails says and leaves every file under the work folder as it was."""
        before = snapshot(self.dir)
        line = self.assert_tool_fails(act(), tool, *fragments)
        self.assertEqual(snapshot(self.dir), before, f"a file was made or changed by: {line}")
        return line


# ---------------------------------------------------------------------------------------------------- calculator

class CalculatorInputTest(ToolTestCase):
    def assert_value_error(self, act, *fragments):
        with self.assertRaises(ValueError) as caught:
            act()
        message = str(caught.exception)
        self.assert_one_line(message, *fragments)
        return message

    def test_results_file_is_not_a_model(self):
        results = write_results(self.path("results.h5"))
        self.assert_value_error(lambda: GradfitCalculator(results), "results.h5 is an HDF5 file",
                                "not an exported model", "gradfit_dist export RESULTS --run best --out model.pt")
        data = write_data(self.path("train.h5"))
        self.assert_value_error(lambda: GradfitCalculator(data), "train.h5 is an HDF5 file")

    def test_text_file_is_not_a_torchscript_archive(self):
        text = write_text(self.path("notes.pt"))
        message = self.assert_value_error(lambda: GradfitCalculator(text), "notes.pt is not a TorchScript archive",
                                          "not a ZIP archive", "gradfit_dist export")
        self.assertLess(len(message), 400)

    def test_missing_empty_and_folder(self):
        self.assert_value_error(lambda: GradfitCalculator(self.path("absent.pt")), "absent.pt: no such file")
        open(self.path("empty.pt"), "w").close()
        self.assert_value_error(lambda: GradfitCalculator(self.path("empty.pt")), "empty.pt is empty (0 bytes)")
        os.mkdir(self.path("models"))
        self.assert_value_error(lambda: GradfitCalculator(self.path("models")), "models is a folder")

    def test_torchscript_module_without_the_export_interface(self):
        path = self.saved_model(NotAnExport(), name="other.pt")
        self.assert_value_error(lambda: GradfitCalculator(path), "other.pt is a TorchScript module but not a "
                                "gradfit_dist export", "no gradient", "no architecture")

    def test_torch_save_file(self):
        path = self.path("weights.pt")
        torch.save({"weight": torch.zeros(3)}, path)
        self.assert_value_error(lambda: GradfitCalculator(path), "weights.pt is a torch.save file",
                                "not a TorchScript archive")

    def test_nan_positions_in_calculate(self):
        path = self.saved_model()
        atoms = helpers.ethanol(seed=1)
        atoms.positions[2, 1] = np.nan
        atoms.calc = GradfitCalculator(path)
        self.assert_value_error(atoms.get_potential_energy, "model.pt: atom 2 has a position that is not finite",
                                "nan")
        atoms.positions[2, 1] = 0.5
        atoms.positions[7, 0] = np.inf
        self.assert_value_error(atoms.get_forces, "model.pt: atom 7 has a position that is not finite", "inf")
        atoms.positions[7, 0] = 0.5
        self.assertTrue(np.isfinite(atoms.get_potential_energy()))  # finite again: it computes

    def test_nan_positions_in_evaluate(self):
        calculator = GradfitCalculator(self.saved_model())
        positions = np.array([helpers.ethanol(seed).get_positions() for seed in range(6)])
        positions[3, 4, 2] = np.nan
        positions[5, 0, 0] = -np.inf
        self.assert_value_error(lambda: calculator.evaluate(positions), "model.pt: frame 3, atom 4 has a position "
                                "that is not finite", "frames with such positions: 2 of 6")
        self.assert_value_error(lambda: calculator.evaluate(positions.reshape(6, -1)), "frame 3, atom 4")
        energies, _ = calculator.evaluate(positions[:3])
        self.assertTrue(np.isfinite(energies).all())

    def test_script_mode_gives_the_same_line(self):
        results = write_results(self.path("results.h5"))
        self.assert_unchanged(lambda: run_script(CALCULATOR_SCRIPT, results), "results.h5 is an HDF5 file",
                              tool="ase_calculator.py")
        self.assert_unchanged(lambda: run_script(CALCULATOR_SCRIPT, self.path("absent.pt")),
                              "absent.pt: no such file", tool="ase_calculator.py")
        status, stdout, stderr = run_script(CALCULATOR_SCRIPT, self.saved_model())
        self.assertEqual((status, stderr), (0, ""))
        self.assertIn("9 atoms (C2H6O: 6 6 8 1 1 1 1 1 1)", stdout)


# ---------------------------------------------------------------------------------------------------- analyze.py

class AnalyzeInputTest(ToolTestCase):
    def analyze(self, *args):
        return run_script(ANALYZE, *args, cwd=self.dir)

    def assert_refused(self, args, *fragments):
        return self.assert_unchanged(lambda: self.analyze(*args), *fragments, tool="analyze.py")

    def test_a_valid_file_is_analysed(self):
        results = write_results(self.path("results.h5"))
        status, stdout, stderr = self.analyze(results, "--csv", self.path("runs.csv"))
        self.assertEqual(status, 0, stderr)
        self.assertIn("best run: lr_0.1", stdout)
        self.assertTrue(os.path.isfile(self.path("runs.csv")))
        self.assertTrue(os.path.isfile(self.path("plots", "rel_grad_error_by_lr.png")))

    def test_files_that_are_not_results(self):
        write_text(self.path("notes.txt"))
        self.assert_refused(["notes.txt"], "notes.txt is not an HDF5 file")
        self.assert_refused(["absent.h5"], "absent.h5: no such file")
        open(self.path("empty.h5"), "w").close()
        self.assert_refused(["empty.h5"], "empty.h5 is empty (0 bytes)")
        write_data(self.path("train.h5"))
        self.assert_refused(["train.h5"], "train.h5 is a data file", "not a results file")
        with h5py.File(self.path("other.h5"), "w") as f:
            f["table"] = np.arange(3)
        self.assert_refused(["other.h5"], "other.h5 has no group /runs")
        with h5py.File(self.path("started.h5"), "w") as f:
            f.create_group("runs")
        self.assert_refused(["started.h5"], "started.h5 holds no runs yet")

    def test_folder_given_as_results(self):
        os.mkdir(self.path("sweep"))
        self.assert_refused(["sweep"], "sweep is a folder, not a results file")
        write_results(self.path("sweep", "results.h5"))
        self.assert_refused(["sweep"], "sweep is a folder", "give sweep/results.h5")

    def test_truncated_and_damaged_files(self):
        results = write_results(self.path("results.h5"), fletcher32=True)
        with open(results, "rb") as f:
            whole = f.read()
        with open(self.path("truncated.h5"), "wb") as f:
            f.write(whole[:len(whole) // 3])
        self.assert_refused(["truncated.h5"], "truncated.h5: a damaged or truncated HDF5 file")
        with open(self.path("headless.h5"), "wb") as f:  # the signature, then nothing HDF5 can read
            f.write(HDF5_SIGNATURE + bytes(len(whole) - len(HDF5_SIGNATURE)))
        self.assert_refused(["headless.h5"], "headless.h5: a damaged or truncated HDF5 file")
        with h5py.File(results, "r") as f:
            offset = f["summary"].id.get_chunk_info(0).byte_offset  # /summary's bytes: damage them, not the structure
        damaged = bytearray(whole)
        damaged[offset:offset + 16] = bytes(b ^ 0xFF for b in damaged[offset:offset + 16])
        with open(self.path("damaged.h5"), "wb") as f:
            f.write(damaged)
        self.assert_refused(["damaged.h5"], "damaged.h5: cannot read it, a damaged results file?")

    def test_csv_never_writes_over_the_results_file(self):
        results = write_results(self.path("results.h5"))
        os.symlink("results.h5", self.path("link.h5"))
        os.link(results, self.path("hard.h5"))
        for args in (["--csv", "results.h5"], ["--csv", results], ["--csv", "link.h5"], ["--csv", "hard.h5"],
                     ["--csv", "./results.h5", "--no-plots"]):
            self.assert_refused(["results.h5"] + args, f"--csv {args[1]} is the results file results.h5")
        self.assert_refused(["link.h5", "--csv", "results.h5"], "--csv results.h5 is the results file link.h5")
        write_data(self.path("train.h5"))
        self.assert_refused(["results.h5", "--csv", "train.h5"], "--csv train.h5 is an HDF5 file")
        os.mkdir(self.path("out"))
        self.assert_refused(["results.h5", "--csv", "out"], "--csv out is a folder")
        self.assert_refused(["results.h5", "--csv", "nowhere/runs.csv"], "--csv nowhere/runs.csv: no folder")

    def test_plots_never_write_over_the_results_file(self):
        results = write_results(self.path("results.h5"))
        os.symlink("results.h5", self.path("link.h5"))
        self.assert_refused(["results.h5", "--plots", "results.h5"], "--plots results.h5 is the results file")
        self.assert_refused(["results.h5", "--plots", "link.h5"], "--plots link.h5 is the results file")
        self.assert_refused(["results.h5", "--plots", "results.h5/plots"], "results.h5 is a file, not a folder")
        write_text(self.path("notes.txt"))
        self.assert_refused(["results.h5", "--plots", "notes.txt"], "--plots notes.txt is a file, not a folder")
        os.mkdir(self.path("figures"))  # a results file named as a plot, in the plots folder
        os.replace(results, self.path("figures", "rel_grad_error_by_lr.png"))
        self.assert_refused(["figures/rel_grad_error_by_lr.png", "--plots", "figures"],
                            "the plot figures/rel_grad_error_by_lr.png would write over")
        os.mkdir(self.path("sweep"))  # the default plots folder (plots/ beside the file) is the results file
        write_results(self.path("sweep", "plots"))
        self.assert_refused(["sweep/plots"], "the default plots folder", "is the results file sweep/plots")

    def test_bad_options_write_nothing(self):
        write_results(self.path("results.h5"))
        self.assert_refused(["results.h5", "--by", "width", "--csv", "runs.csv"],
                            "--by width: not a swept parameter", "(swept: lr)")


# ---------------------------------------------------------------------------------------------------- molecule

class MoleculeScriptsTest(ToolTestCase):
    @classmethod
    def setUpClass(cls):
        cls.md = load_by_path("md", MD)
        cls.plot = load_by_path("molecule_plot", PLOT)

    def setUp(self):
        super().setUp()
        self.model = self.saved_model()
        self.train = write_data(self.path("train.h5"), frames=200, seed=1)
        self.test = write_data(self.path("test.h5"), frames=30, seed=2)

    def run_md(self, *args):
        return run_main(self.md, *args)

    def run_plot(self, *args):
        return run_main(self.plot, *args)

    def nve_csv(self):
        """md.py's nve.csv of a short run, in out/."""
        status, stdout, stderr = self.run_md(self.model, self.train, "--steps", 4, "--out", self.path("out"))
        self.assertEqual((status, stderr), (0, ""), stdout)
        return self.path("out", "nve.csv")

    def test_md_bad_inputs(self):
        out = self.path("out")
        self.assert_unchanged(lambda: self.run_md(self.train, self.train, "--out", out), "train.h5 is an HDF5 file",
                              "not an exported model", tool="md.py")
        self.assert_unchanged(lambda: self.run_md(self.model, self.path("absent.h5"), "--out", out),
                              "absent.h5: no such file", tool="md.py")
        write_text(self.path("train.txt"))
        self.assert_unchanged(lambda: self.run_md(self.model, self.path("train.txt"), "--out", out),
                              "train.txt is not a readable HDF5 data file", tool="md.py")
        write_results(self.path("results.h5"))
        self.assert_unchanged(lambda: self.run_md(self.model, self.path("results.h5"), "--out", out),
                              "results.h5 is a gradfit_dist results file, not a data file", tool="md.py")
        write_data(self.path("plain.h5"), numbers=None)
        self.assert_unchanged(lambda: self.run_md(self.model, self.path("plain.h5"), "--out", out),
                              "plain.h5: no attribute 'numbers'", tool="md.py")
        water = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
        write_data(self.path("water.h5"), numbers=[8, 1, 1], positions=water)
        self.assert_unchanged(lambda: self.run_md(self.model, self.path("water.h5"), "--out", out),
                              "model.pt was trained on 9 atoms (C2H6O", "these atoms are 3 atoms (H2O", tool="md.py")
        self.assert_unchanged(lambda: self.run_md(self.model, self.train, "--frame", 200, "--out", out),
                              "--frame 200", "frames 0 to 199", tool="md.py")
        self.assert_unchanged(lambda: self.run_md(self.model, self.train, "--steps", 0, "--out", out),
                              "--steps 0", tool="md.py")

    def test_md_never_writes_over_an_input(self):
        self.assert_unchanged(lambda: self.run_md(self.model, self.train, "--out", self.train),
                              f"--out {self.train} is a file, not a folder", tool="md.py")
        os.mkdir(self.path("out"))
        os.replace(self.train, self.path("out", "nve.csv"))  # the training file named as md.py's output
        self.assert_unchanged(lambda: self.run_md(self.model, self.path("out", "nve.csv"), "--out", self.path("out")),
                              "nve.csv would write over the input TRAIN.h5", tool="md.py")
        os.replace(self.path("out", "nve.csv"), self.train)
        os.symlink(self.train, self.path("out", "nve.csv"))  # out/nve.csv is a link to the training file
        self.assert_unchanged(lambda: self.run_md(self.model, self.train, "--out", self.path("out")),
                              "nve.csv would write over the input TRAIN.h5", tool="md.py")
        os.remove(self.path("out", "nve.csv"))
        os.link(self.model, self.path("out", "nve.csv"))  # a hard link to the model
        self.assert_unchanged(lambda: self.run_md(self.model, self.train, "--out", self.path("out")),
                              "nve.csv would write over the input MODEL.pt", tool="md.py")

    def test_md_as_a_subprocess(self):
        self.assert_unchanged(lambda: run_script(MD, self.path("results.h5"), self.train, "--out", self.path("o")),
                              "results.h5: no such file", tool="md.py")

    def test_plot_bad_inputs(self):
        nve = self.nve_csv()
        fig = self.path("fig")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, self.path("absent.csv"), "--out", fig),
                              "absent.csv: no such file", tool="plot.py")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, self.test, "--out", fig),
                              "test.h5 is not a text file", tool="plot.py")
        write_text(self.path("other.csv"), "a,b,c\n1,2,3\n")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, self.path("other.csv"), "--out", fig),
                              "other.csv: not md.py's nve.csv", tool="plot.py")
        with open(nve) as f:
            header = f.readline()
        write_text(self.path("short.csv"), header + "0,1,2,3,1,1\n")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, self.path("short.csv"), "--out", fig),
                              "short.csv: 1 rows of numbers", tool="plot.py")
        write_text(self.path("bad.csv"), header + "0,1,2,3,1,1\n0.5,x,2,3,1,1\n")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, self.path("bad.csv"), "--out", fig),
                              "bad.csv: line 3", tool="plot.py")
        self.assert_unchanged(lambda: self.run_plot(self.test, self.test, nve, "--out", fig),
                              "test.h5 is an HDF5 file", tool="plot.py")
        self.assert_unchanged(lambda: self.run_plot(self.model, nve, nve, "--out", fig),
                              "nve.csv is not a readable HDF5 data file", tool="plot.py")
        write_data(self.path("swapped.h5"), numbers=[6, 8, 6, 1, 1, 1, 1, 1, 1])
        self.assert_unchanged(lambda: self.run_plot(self.model, self.path("swapped.h5"), nve, "--out", fig),
                              "model.pt was trained on 9 atoms (C2H6O: 6 6 8", "swapped.h5 are 9 atoms (C2H6O: 6 8 6",
                              tool="plot.py")
        self.assert_unchanged(lambda: run_script(PLOT, self.model, self.test, self.path("absent.csv"), "--out", fig),
                              "absent.csv: no such file", tool="plot.py")
        status, stdout, stderr = self.run_plot(self.model, self.test, nve, "--out", fig)  # and the good inputs work
        self.assertEqual((status, stderr), (0, ""))
        for name in ("forces.png", "nve.png"):
            self.assertTrue(os.path.isfile(os.path.join(fig, name)), name)

    def test_plot_never_writes_over_an_input(self):
        nve = self.nve_csv()
        os.replace(nve, self.path("out", "nve.png"))  # the trace named as the figure plot.py writes beside it
        nve = self.path("out", "nve.png")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, nve, "--out", self.path("out")),
                              "nve.png would write over the input NVE.csv", tool="plot.py")
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, nve, "--out", self.model),
                              "model.pt is a file, not a folder", tool="plot.py")
        os.symlink(self.test, self.path("forces.png"))
        self.assert_unchanged(lambda: self.run_plot(self.model, self.test, nve, "--out", self.dir),
                              "forces.png would write over the input TEST.h5", tool="plot.py")

    def test_make_data_arguments(self):
        os.mkdir(self.path("data"))
        existing = write_text(self.path("data", "ethanol_md.extxyz"), "frames made earlier\n")
        self.assert_unchanged(lambda: run_script(MAKE_DATA, "--out", self.path("data"), "--frames", 2),
                              "ethanol_md.extxyz exists", "--overwrite", tool="make_data.py")
        self.assert_unchanged(lambda: run_script(MAKE_DATA, "--out", existing), "is a file, not a folder",
                              tool="make_data.py")
        self.assert_unchanged(lambda: run_script(MAKE_DATA, "--out", self.path("new"), "--frames", 0),
                              "--frames must be >= 1", tool="make_data.py")
        self.assert_unchanged(lambda: run_script(MAKE_DATA, "--out", self.path("new"), "--jobs", 0),
                              "--jobs must be >= 1", tool="make_data.py")


if __name__ == "__main__":
    unittest.main()
