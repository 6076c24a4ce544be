#include "io/h5.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace gradfit::io {
namespace {

// HDF5 prints its error stack to stderr by default; we report errors ourselves. Nor does it clean up at exit: a
// file whose close failed (a full disk) stays in its tables, and HDF5 1.10 crashes closing it again at exit.
void silence_hdf5() {
  static const bool done = [] {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// `what`, and HDF5's reason where its error stack gives one.
std::string with_reason(const std::string& what) {
  const std::string reason = hdf5_reason();
  return reason.empty() ? what : what + ": " + reason;
}

hid_t checked(hid_t id, const std::string& what) {
  if (id < 0) throw IoError(with_reason(what));
  return id;
}

// File access without HDF5's file locks: every file here is written whole by one process and renamed into
// place, and the locks fail on many network filesystems (NFS, some Lustre setups). HDF5_USE_FILE_LOCKING in the
// environment still takes precedence where the library honours it.
Handle file_access() {
  const hid_t access = H5Pcreate(H5P_FILE_ACCESS);
  if (access < 0) throw IoError("cannot create an HDF5 file access property list");
  Handle handle(access, H5Pclose);
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(access, /*use_file_locking=*/false, /*ignore_when_disabled=*/true);
#endif
  return handle;
}

void checked_status(herr_t status, const std::string& what) {
  if (status < 0) throw IoError(with_reason(what));
}

// The innermost entry of the error stack: where HDF5 found the problem (its description names the system error,
// e.g. "... errno = 28, error message = 'No space left on device' ...").
herr_t innermost(unsigned n, const H5E_error2_t* error, void* out) {
  if (n == 0 && error->desc) *static_cast<std::string*>(out) = error->desc;
  return 0;
}

// The system's message in one of HDF5's descriptions ("..., errno = 28, error message = 'No space left on
// device', ..."), else the description up to its first line break.
std::string system_message(const std::string& desc) {
  const std::string tag = "error message = '";
  const auto at = desc.find(tag);
  if (at != std::string::npos) {
    const auto end = desc.find('\'', at + tag.size());
    if (end != std::string::npos) return desc.substr(at + tag.size(), end - at - tag.size());
  }
  return desc.substr(0, desc.find('\n'));
}

Handle make_space(const std::vector<int64_t>& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  const hid_t id =
      shape.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  return Handle(checked(id, "cannot create an HDF5 dataspace"), H5Sclose);
}

// A dataset of one chunk with HDF5's Fletcher32 checksum, so that reading back a damaged one fails instead of
// returning wrong numbers (scalars and empty datasets cannot be chunked: default layout).
Handle checksummed_layout(const std::vector<int64_t>& shape) {
  Handle create(checked(H5Pcreate(H5P_DATASET_CREATE), "cannot create a dataset property list"), H5Pclose);
  const bool chunkable = !shape.empty() && std::none_of(shape.begin(), shape.end(), [](int64_t d) { return d == 0; });
  if (!chunkable) return create;
  const std::vector<hsize_t> chunk(shape.begin(), shape.end());
  checked_status(H5Pset_chunk(create.id(), static_cast<int>(chunk.size()), chunk.data()), "cannot set a chunk");
  checked_status(H5Pset_fletcher32(create.id()), "cannot set the Fletcher32 checksum");
  return create;
}

void write_dataset(const Location& loc, const std::string& name, const std::vector<int64_t>& shape, hid_t file_type,
                   hid_t mem_type, const void* data, const std::string& where) {
  const Handle space = make_space(shape);
  const Handle layout = checksummed_layout(shape);
  const Handle set(
      checked(H5Dcreate2(loc.id(), name.c_str(), file_type, space.id(), H5P_DEFAULT, layout.id(), H5P_DEFAULT),
              "cannot create dataset " + where),
      H5Dclose);
  checked_status(H5Dwrite(set.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "cannot write dataset " + where);
}

void write_attr(const Location& loc, const std::string& name, const std::vector<int64_t>& shape, hid_t type,
                const void* data, const std::string& where) {
  const Handle space = make_space(shape);
  const Handle attr(checked(H5Acreate2(loc.id(), name.c_str(), type, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                            "cannot create attribute " + where),
                    H5Aclose);
  checked_status(H5Awrite(attr.id(), type, data), "cannot write attribute " + where);
}

}  // namespace

Handle::Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    closer_ = other.closer_;
  }
  return *this;
}

void Handle::close(const std::string& what) {
  if (id_ < 0 || !closer_) return;
  const herr_t status = closer_(std::exchange(id_, H5I_INVALID_HID));
  checked_status(status, what);
}

Handle::~Handle() {
  // A destructor must not throw; a failed close has nothing left to tell the user.
  if (id_ >= 0 && closer_) closer_(id_);
}

std::string Location::where(const std::string& object) const {
  return "'" + object + "' in '" + name_ + "'";
}

Location Location::create_group(const std::string& name) const {
  const hid_t group = H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  return Location(Handle(checked(group, "cannot create group " + where(name)), H5Gclose), name_ + "/" + name);
}

bool Location::has(const std::string& name) const {
  return H5Lexists(id(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> Location::children(const std::string& group) const {
  const Handle g(checked(H5Gopen2(id(), group.c_str(), H5P_DEFAULT), "cannot open group " + where(group)), H5Gclose);
  std::vector<std::string> names;
  // Generic in the info type: H5L_info_t in HDF5 1.10, H5L_info2_t from 1.12 on.
  const auto collect = [](hid_t, const char* name, const auto*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  checked_status(H5Literate(g.id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names),
                 "cannot list group " + where(group));
  return names;
}

void Location::copy_from(const Location& source, const std::string& source_path, const std::string& name) const {
  checked_status(H5Ocopy(source.id(), source_path.c_str(), id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
                 "cannot copy " + source.where(source_path) + " to " + where(name));
}

void Location::write(const std::string& name, const std::vector<int64_t>& shape, const double* data) const {
  write_dataset(*this, name, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, where(name));
}
void Location::write(const std::string& name, const std::vector<int64_t>& shape, const float* data) const {
  write_dataset(*this, name, shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, where(name));
}
void Location::write(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data) const {
  write_dataset(*this, name, shape, H5T_STD_I64LE, H5T_NATIVE_INT64, data, where(name));
}
void Location::write(const std::string& name, const std::vector<double>& values) const {
  write(name, {static_cast<int64_t>(values.size())}, values.data());
}
void Location::write(const std::string& name, const std::vector<int64_t>& values) const {
  write(name, {static_cast<int64_t>(values.size())}, values.data());
}

void Location::write_attribute(const std::string& name, const std::string& value) const {
  const Handle type(checked(H5Tcopy(H5T_C_S1), "cannot create a string type"), H5Tclose);
  checked_status(H5Tset_size(type.id(), H5T_VARIABLE), "cannot size a string type");
  checked_status(H5Tset_cset(type.id(), H5T_CSET_UTF8), "cannot set a string type's character set");
  const char* text = value.c_str();
  write_attr(*this, name, {}, type.id(), &text, where(name));
}
void Location::write_attribute(const std::string& name, double value) const {
  write_attr(*this, name, {}, H5T_NATIVE_DOUBLE, &value, where(name));
}
void Location::write_attribute(const std::string& name, int64_t value) const {
  write_attr(*this, name, {}, H5T_NATIVE_INT64, &value, where(name));
}
void Location::write_attribute(const std::string& name, const std::vector<double>& values) const {
  write_attr(*this, name, {static_cast<int64_t>(values.size())}, H5T_NATIVE_DOUBLE, values.data(), where(name));
}
void Location::write_attribute(const std::string& name, const std::vector<int64_t>& values) const {
  write_attr(*this, name, {static_cast<int64_t>(values.size())}, H5T_NATIVE_INT64, values.data(), where(name));
}

void Location::write_table(const std::string& name, const std::vector<TableColumn>& columns) const {
  size_t rows = 0, record = 0;
  std::vector<size_t> offsets, sizes;
  std::vector<Handle> types;
  for (const auto& c : columns) {
    const size_t n = !c.texts.empty() ? c.texts.size() : !c.ints.empty() ? c.ints.size() : c.reals.size();
    if (&c != &columns.front() && n != rows) throw IoError("table " + where(name) + ": columns differ in length");
    rows = n;
    size_t size = sizeof(double);
    Handle type;
    if (!c.texts.empty()) {
      size = 1;
      for (const auto& t : c.texts) size = std::max(size, t.size() + 1);
      type = Handle(checked(H5Tcopy(H5T_C_S1), "cannot create a string type"), H5Tclose);
      checked_status(H5Tset_size(type.id(), size), "cannot size a string type");
    } else {
      type = Handle(checked(H5Tcopy(c.ints.empty() ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64), "cannot copy a type"),
                    H5Tclose);
    }
    offsets.push_back(record);
    sizes.push_back(size);
    types.push_back(std::move(type));
    record += size;
  }
  const Handle compound(checked(H5Tcreate(H5T_COMPOUND, std::max<size_t>(record, 1)), "cannot create a table type"),
                        H5Tclose);
  for (size_t k = 0; k < columns.size(); ++k)
    checked_status(H5Tinsert(compound.id(), columns[k].name.c_str(), offsets[k], types[k].id()),
                   "cannot add column '" + columns[k].name + "' to table " + where(name));
  std::vector<char> buffer(rows * record, '\0');
  for (size_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < columns.size(); ++k) {
      char* at = buffer.data() + r * record + offsets[k];
      const auto& c = columns[k];
      if (!c.texts.empty())
        std::copy(c.texts[r].begin(), c.texts[r].end(), at);
      else if (!c.ints.empty())
        std::memcpy(at, &c.ints[r], sizeof(int64_t));
      else
        std::memcpy(at, &c.reals[r], sizeof(double));
    }
  }
  write_dataset(*this, name, {static_cast<int64_t>(rows)}, compound.id(), compound.id(), buffer.data(), where(name));
}

void Location::write_bytes(const std::string& name, const std::string& bytes) const {
  const std::vector<int64_t> shape{static_cast<int64_t>(bytes.size())};
  write_dataset(*this, name, shape, H5T_NATIVE_UCHAR, H5T_NATIVE_UCHAR, bytes.data(), where(name));
}

std::string Location::read_bytes(const std::string& name) const {
  const auto info = dataset_info(name);
  if (info.shape.size() != 1) throw IoError("dataset " + where(name) + " must be 1-D bytes");
  std::string bytes(static_cast<size_t>(info.shape[0]), '\0');
  const Handle set(checked(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset " + where(name)), H5Dclose);
  if (!bytes.empty())
    checked_status(H5Dread(set.id(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()),
                   "cannot read dataset " + where(name));
  return bytes;
}

namespace {
void read_attr(const Location& loc, const std::string& name, hid_t type, void* out, const std::string& where) {
  const Handle attr(checked(H5Aopen(loc.id(), name.c_str(), H5P_DEFAULT), "cannot open attribute " + where), H5Aclose);
  checked_status(H5Aread(attr.id(), type, out), "cannot read attribute " + where);
}
}  // namespace

bool Location::has_attribute(const std::string& name) const {
  return H5Aexists(id(), name.c_str()) > 0;
}

double Location::read_double_attribute(const std::string& name) const {
  double value = 0;
  read_attr(*this, name, H5T_NATIVE_DOUBLE, &value, where(name));
  return value;
}

int64_t Location::read_int_attribute(const std::string& name) const {
  int64_t value = 0;
  read_attr(*this, name, H5T_NATIVE_INT64, &value, where(name));
  return value;
}

std::vector<char> Location::read_vector_attribute(const std::string& name, hid_t type, size_t element_bytes) const {
  const Handle attr(checked(H5Aopen(id(), name.c_str(), H5P_DEFAULT), "cannot open attribute " + where(name)),
                    H5Aclose);
  const Handle space(checked(H5Aget_space(attr.id()), "cannot read the shape of attribute " + where(name)), H5Sclose);
  const hssize_t count = H5Sget_simple_extent_npoints(space.id());
  if (count < 0) throw IoError("cannot read the shape of attribute " + where(name));
  std::vector<char> bytes(static_cast<size_t>(count) * element_bytes);
  if (count > 0) checked_status(H5Aread(attr.id(), type, bytes.data()), "cannot read attribute " + where(name));
  return bytes;
}

std::vector<int64_t> Location::read_int_vector_attribute(const std::string& name) const {
  const auto bytes = read_vector_attribute(name, H5T_NATIVE_INT64, sizeof(int64_t));
  std::vector<int64_t> values(bytes.size() / sizeof(int64_t));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

std::vector<double> Location::read_double_vector_attribute(const std::string& name) const {
  const auto bytes = read_vector_attribute(name, H5T_NATIVE_DOUBLE, sizeof(double));
  std::vector<double> values(bytes.size() / sizeof(double));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

std::string Location::read_string_attribute(const std::string& name) const {
  const Handle type(checked(H5Tcopy(H5T_C_S1), "cannot create a string type"), H5Tclose);
  checked_status(H5Tset_size(type.id(), H5T_VARIABLE), "cannot size a string type");
  checked_status(H5Tset_cset(type.id(), H5T_CSET_UTF8), "cannot set a string type's character set");
  char* text = nullptr;
  read_attr(*this, name, type.id(), &text, where(name));
  std::string value = text ? text : "";
  H5free_memory(text);
  return value;
}

DatasetInfo Location::dataset_info(const std::string& name) const {
  const Handle set(checked(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset " + where(name)), H5Dclose);
  const Handle space(checked(H5Dget_space(set.id()), "cannot read the shape of " + where(name)), H5Sclose);
  const Handle type(checked(H5Dget_type(set.id()), "cannot read the type of " + where(name)), H5Tclose);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  checked_status(rank, "cannot read the rank of " + where(name));
  std::vector<hsize_t> dims(rank);
  checked_status(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr),
                 "cannot read the shape of " + where(name));
  DatasetInfo info;
  info.shape.assign(dims.begin(), dims.end());
  info.type_class = H5Tget_class(type.id());
  return info;
}

std::vector<double> Location::read_rows(const std::string& name, int64_t row_begin, int64_t rows) const {
  const Handle set(checked(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset " + where(name)), H5Dclose);
  const Handle file_space(checked(H5Dget_space(set.id()), "cannot read the shape of " + where(name)), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(file_space.id());
  if (rank < 1 || rank > 2) throw IoError("dataset " + where(name) + " must be 1-D or 2-D");
  hsize_t dims[2] = {0, 1};
  H5Sget_simple_extent_dims(file_space.id(), dims, nullptr);
  const hsize_t cols = rank == 2 ? dims[1] : 1;
  std::vector<double> out(static_cast<size_t>(rows) * cols);
  if (rows == 0) return out;
  const hsize_t start[2] = {static_cast<hsize_t>(row_begin), 0};
  const hsize_t count[2] = {static_cast<hsize_t>(rows), cols};
  checked_status(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start, nullptr, count, nullptr),
                 "cannot select rows of " + where(name));
  const Handle mem_space(checked(H5Screate_simple(rank, count, nullptr), "cannot create a memory dataspace"), H5Sclose);
  checked_status(
      H5Dread(set.id(), H5T_NATIVE_DOUBLE, mem_space.id(), file_space.id(), H5P_DEFAULT, out.data()),
      "cannot read rows " + std::to_string(row_begin) + ".." + std::to_string(row_begin + rows) + " of " + where(name));
  return out;
}

void Location::create_dataset(const std::string& name, const std::vector<int64_t>& shape, bool float32) const {
  if (shape.empty() || shape.size() > 2) throw IoError("dataset " + where(name) + " must be 1-D or 2-D");
  const Handle space = make_space(shape);
  const hid_t type = float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
  const Handle set(checked(H5Dcreate2(id(), name.c_str(), type, space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                           "cannot create dataset " + where(name)),
                   H5Dclose);
}

namespace {

// Writes `rows` rows from `row_begin` of the 1-D or 2-D dataset `set` from `data` (of HDF5 memory type `mem_type`).
void write_hyperslab(hid_t set, int64_t row_begin, int64_t rows, hid_t mem_type, const void* data,
                     const std::string& where) {
  const Handle file_space(checked(H5Dget_space(set), "cannot read the shape of " + where), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(file_space.id());
  if (rank < 1 || rank > 2) throw IoError("dataset " + where + " must be 1-D or 2-D");
  hsize_t dims[2] = {0, 1};
  H5Sget_simple_extent_dims(file_space.id(), dims, nullptr);
  if (row_begin < 0 || rows < 0 || static_cast<hsize_t>(row_begin + rows) > dims[0])
    throw IoError("rows " + std::to_string(row_begin) + ".." + std::to_string(row_begin + rows) +
                  " are outside dataset " + where + " (" + std::to_string(dims[0]) + " rows)");
  if (rows == 0) return;
  const hsize_t start[2] = {static_cast<hsize_t>(row_begin), 0};
  const hsize_t count[2] = {static_cast<hsize_t>(rows), rank == 2 ? dims[1] : 1};
  checked_status(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start, nullptr, count, nullptr),
                 "cannot select rows of " + where);
  const Handle mem_space(checked(H5Screate_simple(rank, count, nullptr), "cannot create a memory dataspace"), H5Sclose);
  checked_status(
      H5Dwrite(set, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data),
      "cannot write rows " + std::to_string(row_begin) + ".." + std::to_string(row_begin + rows) + " of " + where);
}

}  // namespace

void Location::write_rows(const std::string& name, int64_t row_begin, int64_t rows, const double* data) const {
  const Handle set(checked(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset " + where(name)), H5Dclose);
  write_hyperslab(set.id(), row_begin, rows, H5T_NATIVE_DOUBLE, data, where(name));
}

void Location::write_rows(const std::string& name, int64_t row_begin, int64_t rows, const float* data) const {
  const Handle set(checked(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset " + where(name)), H5Dclose);
  write_hyperslab(set.id(), row_begin, rows, H5T_NATIVE_FLOAT, data, where(name));
}

Location Location::open_group(const std::string& name) const {
  const hid_t group = H5Gopen2(id(), name.c_str(), H5P_DEFAULT);
  return Location(Handle(checked(group, "cannot open group " + where(name)), H5Gclose), name_ + "/" + name);
}

namespace {

// Collects the names of the datasets below a group (H5Ovisit's callback; its info type differs between versions).
template <class Info>
herr_t collect_dataset(hid_t, const char* name, const Info* info, void* names) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(names)->push_back(name);
  return 0;
}

// Reads dataset `name` of `file` whole, in its own type: its filters' checks (the checksum) run. (The tool
// writes no variable-length data, which would need reclaiming.)
void read_whole(const File& file, const std::string& name) {
  const std::string what = "'" + file.path() + "' is damaged: dataset '" + name + "' cannot be read";
  const Handle set(checked(H5Dopen2(file.id(), name.c_str(), H5P_DEFAULT), what), H5Dclose);
  const Handle type(checked(H5Dget_type(set.id()), what), H5Tclose);
  const Handle space(checked(H5Dget_space(set.id()), what), H5Sclose);
  const hssize_t count = H5Sget_simple_extent_npoints(space.id());
  std::vector<unsigned char> buffer(static_cast<size_t>(std::max<hssize_t>(count, 1)) * H5Tget_size(type.id()));
  checked_status(H5Dread(set.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), what);
}

}  // namespace

void verify_file(const std::string& path) {
  const File file = File::open_read_only(path);
  std::vector<std::string> names;
#if H5_VERSION_GE(1, 12, 0)
  const herr_t status =
      H5Ovisit3(file.id(), H5_INDEX_NAME, H5_ITER_NATIVE, collect_dataset<H5O_info2_t>, &names, H5O_INFO_BASIC);
#else
  const herr_t status =
      H5Ovisit2(file.id(), H5_INDEX_NAME, H5_ITER_NATIVE, collect_dataset<H5O_info_t>, &names, H5O_INFO_BASIC);
#endif
  checked_status(status, "'" + path + "' is damaged: its objects cannot be listed");
  for (const auto& name : names) read_whole(file, name);
}

std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &reason);
  return system_message(reason);
}

void File::close() {
  checked_status(H5Fflush(id(), H5F_SCOPE_GLOBAL), "cannot write HDF5 file '" + path() + "'");
  handle().close("cannot close HDF5 file '" + path() + "'");
}

void write_file_atomically(const std::string& path, const std::function<void(const File&)>& fill,
                           const std::function<void()>& before_rename) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  try {
    File file = File::create(temporary);
    fill(file);
    file.close();                                   // flushed and closed, each checked, before the rename
    File::open_read_only(temporary).children(".");  // and readable: its superblock and root group are whole
    if (before_rename) before_rename();
    durable_rename(temporary, path);
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
}

void durable_rename(const std::string& temporary, const std::string& path) {
  const auto sync = [](const std::string& p, int flags) {
    const int fd = ::open(p.c_str(), flags);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
  };
  if (!sync(temporary, O_RDONLY)) throw IoError("cannot flush '" + temporary + "' to disk");
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    throw IoError("cannot rename '" + temporary + "' to '" + path + "': " + std::strerror(errno));
  const auto slash = path.find_last_of('/');
  sync(slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash), O_RDONLY | O_DIRECTORY);
}

File File::create(const std::string& path) {
  silence_hdf5();
  const Handle access = file_access();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.id());
  return File(Handle(checked(id, "cannot create HDF5 file '" + path + "'"), H5Fclose), path);
}

File File::open_read_only(const std::string& path) {
  silence_hdf5();
  const Handle access = file_access();
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.id());
  return File(Handle(checked(id, "cannot open HDF5 file '" + path + "' (missing, or not an HDF5 file)"), H5Fclose),
              path);
}

File File::open_read_write(const std::string& path) {
  silence_hdf5();
  const Handle access = file_access();
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, access.id());
  return File(Handle(checked(id, "cannot open HDF5 file '" + path + "' for writing"), H5Fclose), path);
}

}  // namespace gradfit::io
